//! Tenancy's invitations by mail: a team invitation and a studio's contract
//! invitation reach the invitee through the platform mailer (the test kit's
//! SMTP sink), saying who invites them, what accepting means, how to answer
//! and until when — with no token; an invitation to an unknown address
//! mails nothing and answers as it always did.

use std::time::Duration;

use fitflow_e2e::{AUDIT, IDENTITY, Sandbox, bearer};
use fitflow_proto::tenancy as pb;
use fitflow_testkit::ReceivedMail;

use crate::identity_support::reason;
use crate::tenancy::{
    TENANCY, create_studio, date, invite, member, rates, tenancy, today, trainer_profile,
};

/// Mail is sent in the background; this is how long a test waits for it.
const MAIL_WAIT: Duration = Duration::from_secs(15);

/// A trainer whose business is `business_name`: id, email, token.
async fn trainer_named(
    sandbox: &Sandbox,
    name: &str,
    business_name: &str,
) -> (String, String, String) {
    let (id, email, token) = member(sandbox, name).await;
    tenancy(sandbox, "gateway")
        .create_trainer(bearer(
            pb::CreateTrainerRequest {
                trainer: Some(pb::Trainer {
                    business_name: business_name.into(),
                    ..trainer_profile()
                }),
                request_id: String::new(),
            },
            &token,
        ))
        .await
        .expect("create trainer");
    (id, email, token)
}

fn subject(mail: &ReceivedMail) -> String {
    mail.header("subject").unwrap_or_default()
}

/// Invitations mailed to `email` so far (sign-up also mailed it a
/// verification code, which is not one).
fn invitations(sandbox: &Sandbox, email: &str) -> Vec<ReceivedMail> {
    sandbox
        .mail
        .received_by(email)
        .into_iter()
        .filter(|mail| subject(mail).contains(" invites you "))
        .collect()
}

/// Waits until `count` invitations reached `email`; returns them.
async fn wait_for_invitations(sandbox: &Sandbox, email: &str, count: usize) -> Vec<ReceivedMail> {
    fitflow_testkit::eventually(
        &format!("{count} invitation(s) mailed"),
        MAIL_WAIT,
        async || invitations(sandbox, email).len() >= count,
    )
    .await;
    invitations(sandbox, email)
}

fn invite_request(leader_id: &str, email: &str, request_id: &str) -> pb::InviteTeamMemberRequest {
    pb::InviteTeamMemberRequest {
        leader_id: leader_id.into(),
        trainer: Some(pb::invite_team_member_request::Trainer::TrainerEmail(
            email.into(),
        )),
        request_id: request_id.into(),
    }
}

#[tokio::test]
async fn a_team_invitation_is_mailed_to_the_invitee_once_naming_the_lead_the_answer_and_the_expiry()
{
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (lead_id, lead_email, lead_token) =
        trainer_named(&sandbox, "Lena", "Lena Strength Co").await;
    let (member_id, member_email, _) = trainer_named(&sandbox, "Milo", "Milo Moves").await;
    let request_id = uuid::Uuid::new_v4().to_string();

    // Invited by id: tenancy reads the address from identity itself.
    let by_id = pb::InviteTeamMemberRequest {
        leader_id: lead_id.clone(),
        trainer: Some(pb::invite_team_member_request::Trainer::TrainerId(
            member_id.clone(),
        )),
        request_id: request_id.clone(),
    };
    let invitation = tenancy(&sandbox, "gateway")
        .invite_team_member(bearer(by_id.clone(), &lead_token))
        .await
        .expect("invite")
        .into_inner()
        .invitation
        .expect("invitation");
    let replayed = tenancy(&sandbox, "gateway")
        .invite_team_member(bearer(by_id, &lead_token))
        .await
        .expect("a replay answers the same invitation")
        .into_inner()
        .invitation
        .expect("invitation");
    assert_eq!(replayed.id, invitation.id);

    let mail = wait_for_invitations(&sandbox, &member_email, 1).await;
    let letter = &mail[0];
    assert_eq!(
        subject(letter),
        "FitFlow: Lena Strength Co invites you to their team"
    );
    let text = letter.text();
    assert!(text.starts_with("Hello Milo,"), "{text}");
    assert!(
        text.contains("Lena Strength Co invites you to join their team"),
        "{text}"
    );
    assert!(text.contains("becomes your team lead"), "{text}");
    assert!(
        text.contains(&format!(
            "AnswerTeamInvitation with invitation id {}",
            invitation.id
        )),
        "{text}"
    );
    let expires = invitation.expire_time.expect("expiry");
    let expires = chrono::DateTime::from_timestamp(expires.seconds, 0).expect("an instant");
    assert!(
        text.contains(&format!(
            "expires on {} UTC",
            expires.format("%Y-%m-%d %H:%M")
        )),
        "{text}"
    );
    assert!(!text.contains("eyJ"), "no token: {text}");
    assert!(
        invitations(&sandbox, &lead_email).is_empty(),
        "the lead is not mailed"
    );

    // A later mail to the same invitee (a contract invitation) arrives
    // after the replay was answered: still one team invitation.
    let (_, _, owner_token) = member(&sandbox, "Olga").await;
    let studio = create_studio(&sandbox, &owner_token, "Harbour Studio", "").await;
    invite(&sandbox, &owner_token, &studio.id, &member_email)
        .await
        .expect("contract invitation");
    let mail = wait_for_invitations(&sandbox, &member_email, 2).await;
    let team_letters = mail
        .iter()
        .filter(|mail| subject(mail).contains("to their team"))
        .count();
    assert_eq!(team_letters, 1, "a replayed invitation is not mailed again");
}

#[tokio::test]
async fn a_contract_invitation_is_mailed_naming_the_studio_the_role_the_start_and_how_to_answer() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (_, _, owner_token) = member(&sandbox, "Olga").await;
    let studio = create_studio(&sandbox, &owner_token, "Pulse Plateau", "").await;
    let (trainer_id, trainer_email, _) = trainer_named(&sandbox, "Tara", "Tara Trains").await;

    let contract = tenancy(&sandbox, "gateway")
        .create_contract(bearer(
            pb::CreateContractRequest {
                studio_id: studio.id.clone(),
                trainer: Some(pb::create_contract_request::Trainer::TrainerId(trainer_id)),
                role: pb::ContractRole::Employee as i32,
                start_date: date(today()),
                rates: rates("50", None),
                request_id: String::new(),
            },
            &owner_token,
        ))
        .await
        .expect("invite")
        .into_inner()
        .contract
        .expect("contract");

    let mail = wait_for_invitations(&sandbox, &trainer_email, 1).await;
    assert_eq!(
        subject(&mail[0]),
        "FitFlow: Pulse Plateau invites you to work there"
    );
    let text = mail[0].text();
    assert!(
        text.contains(&format!(
            "The studio Pulse Plateau invites you to work there as an employee, from {}.",
            today().format("%Y-%m-%d")
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "AcceptContract or DeclineContract with contract id {}",
            contract.id
        )),
        "{text}"
    );
    assert!(text.contains("stays open until you answer it"), "{text}");
}

#[tokio::test]
async fn an_invitation_to_an_unknown_address_mails_nothing_and_answers_as_before() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (lead_id, _, lead_token) = trainer_named(&sandbox, "Lena", "Lena Strength Co").await;
    let (_, member_email, _) = trainer_named(&sandbox, "Milo", "Milo Moves").await;
    let unknown = format!("nobody-{}@example.com", uuid::Uuid::new_v4());

    let refused = tenancy(&sandbox, "gateway")
        .invite_team_member(bearer(
            invite_request(&lead_id, &unknown, &uuid::Uuid::new_v4().to_string()),
            &lead_token,
        ))
        .await
        .expect_err("no such account");
    assert_eq!(refused.code(), tonic::Code::NotFound);
    assert_eq!(reason(&refused), "TRAINER_NOT_FOUND");

    // A known invitee's mail, sent after the refusal, shows the mailer ran.
    tenancy(&sandbox, "gateway")
        .invite_team_member(bearer(
            invite_request(&lead_id, &member_email, &uuid::Uuid::new_v4().to_string()),
            &lead_token,
        ))
        .await
        .expect("invite");
    wait_for_invitations(&sandbox, &member_email, 1).await;
    assert!(sandbox.mail.received_by(&unknown).is_empty());
    let all_invitations = sandbox
        .mail
        .received()
        .into_iter()
        .filter(|mail| subject(mail).contains(" invites you "))
        .count();
    assert_eq!(all_invitations, 1, "only the known invitee was mailed");
}
