//! The mail tenancy sends: an invitation into a team, and a studio's
//! invitation to work there. Each tells the invitee who invites them, what
//! accepting means, how to answer and until when; none carries a token or a
//! link that acts by itself — answering takes the invitee's own signed-in
//! call.
//!
//! Sending runs in the background after the invitation committed: the
//! invitee's address is read from identity (`LookupUser`) and the message
//! handed to the SMTP server there, so no response waits on identity or the
//! mail server, and its timing does not tell whether an address has an
//! account (an unknown address sends nothing and answers as before). A
//! failed send is logged without the recipient; the invitation stands and
//! is listed by `ListTeamInvitations` and `ListContracts` all the same.

use chrono::{DateTime, NaiveDate, Utc};
use fitflow_mail::{Mail, Mailer};
use uuid::Uuid;

use crate::identity::Accounts;

/// The product name in every subject.
const PRODUCT: &str = "FitFlow";

/// Writes and sends tenancy's mail.
#[derive(Clone)]
pub struct Letters {
    mailer: Mailer,
    accounts: Accounts,
}

/// A team invitation, as the mail tells it.
#[derive(Debug, Clone)]
pub(crate) struct TeamInvitationLetter {
    /// The invitation's id, which the invitee answers.
    pub invitation_id: Uuid,
    /// The lead's business name.
    pub lead_name: String,
    /// When the invitation lapses.
    pub expires_at: DateTime<Utc>,
}

/// A studio's contract invitation, as the mail tells it.
#[derive(Debug, Clone)]
pub(crate) struct ContractInvitationLetter {
    /// The contract's id, which the invitee accepts or declines.
    pub contract_id: Uuid,
    /// The inviting studio's name.
    pub studio_name: String,
    /// `contractor` or `employee`.
    pub role: &'static str,
    /// The first day the contract would cover.
    pub start_date: NaiveDate,
}

/// The subject of a team invitation.
fn team_invitation_subject(letter: &TeamInvitationLetter) -> String {
    format!("{PRODUCT}: {} invites you to their team", letter.lead_name)
}

/// The text of a team invitation.
fn team_invitation_text(greeting_name: &str, letter: &TeamInvitationLetter) -> String {
    format!(
        "Hello {greeting_name},\n\n\
         {lead} invites you to join their team on {PRODUCT}.\n\n\
         If you accept, {lead} becomes your team lead: they, and the leads above \
         them, see and manage what you see and manage in {PRODUCT} — your \
         profile, your clients, your calendar and your invoices — for as long \
         as you stay in the team. You can leave the team at any time, and your \
         lead can remove you.\n\n\
         To answer, sign in to {PRODUCT} and accept or decline the invitation \
         among your team invitations (AnswerTeamInvitation with invitation id \
         {id}).\n\n\
         The invitation expires on {expires} UTC. If you do not know {lead}, \
         decline it or ignore this message: nothing changes unless you \
         accept.\n",
        lead = letter.lead_name,
        id = letter.invitation_id,
        expires = letter.expires_at.format("%Y-%m-%d %H:%M"),
    )
}

/// The subject of a contract invitation.
fn contract_invitation_subject(letter: &ContractInvitationLetter) -> String {
    format!(
        "{PRODUCT}: {} invites you to work there",
        letter.studio_name
    )
}

/// The text of a contract invitation.
fn contract_invitation_text(greeting_name: &str, letter: &ContractInvitationLetter) -> String {
    format!(
        "Hello {greeting_name},\n\n\
         The studio {studio} invites you to work there as {article} {role}, \
         from {start}.\n\n\
         If you accept, the contract and its rates (shown with the invitation) \
         take effect from that date: the studio sees your trainer card and the \
         classes you give there, and pays you at the rates in force on each \
         class's date. Either side can end the contract later.\n\n\
         To answer, sign in to {PRODUCT} and accept or decline the invitation \
         among your contracts (AcceptContract or DeclineContract with contract \
         id {id}).\n\n\
         The invitation stays open until you answer it or the studio withdraws \
         it. If you do not know {studio}, decline it or ignore this message: \
         nothing changes unless you accept.\n",
        studio = letter.studio_name,
        article = if letter.role == "employee" { "an" } else { "a" },
        role = letter.role,
        start = letter.start_date.format("%Y-%m-%d"),
        id = letter.contract_id,
    )
}

impl Letters {
    /// Letters sent through `mailer` to the addresses `accounts` holds.
    pub fn new(mailer: Mailer, accounts: Accounts) -> Self {
        Self { mailer, accounts }
    }

    /// Mails `invitee` their team invitation, in the background.
    pub(crate) fn send_team_invitation(&self, invitee: Uuid, letter: TeamInvitationLetter) {
        self.send(invitee, move |name| Mail {
            to: String::new(),
            subject: team_invitation_subject(&letter),
            text: team_invitation_text(name, &letter),
        });
    }

    /// Mails `invitee` a studio's contract invitation, in the background.
    pub(crate) fn send_contract_invitation(&self, invitee: Uuid, letter: ContractInvitationLetter) {
        self.send(invitee, move |name| Mail {
            to: String::new(),
            subject: contract_invitation_subject(&letter),
            text: contract_invitation_text(name, &letter),
        });
    }

    /// Reads `user_id`'s address and name from identity, writes the mail
    /// with `write` and sends it; nothing for an account that is gone or
    /// suspended since.
    fn send(&self, user_id: Uuid, write: impl FnOnce(&str) -> Mail + Send + 'static) {
        let letters = self.clone();
        tokio::spawn(async move {
            let contact = match letters.accounts.contact(user_id).await {
                Ok(Some(contact)) => contact,
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(%error, "an invitation was not mailed: identity did not answer");
                    return;
                }
            };
            let mut mail = write(&contact.display_name);
            mail.to = contact.email;
            if let Err(error) = letters.mailer.send(mail).await {
                // The error never holds the message or its recipient.
                tracing::warn!(%error, "an invitation could not be mailed");
            }
        });
    }
}

impl std::fmt::Debug for Letters {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Letters")
            .field("mailer", &self.mailer)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn team() -> TeamInvitationLetter {
        TeamInvitationLetter {
            invitation_id: Uuid::from_u128(7),
            lead_name: "Ana Fitness".into(),
            expires_at: DateTime::parse_from_rfc3339("2026-12-13T09:30:00Z")
                .unwrap()
                .with_timezone(&Utc),
        }
    }

    fn contract() -> ContractInvitationLetter {
        ContractInvitationLetter {
            contract_id: Uuid::from_u128(9),
            studio_name: "Pulse Plateau".into(),
            role: "employee",
            start_date: NaiveDate::from_ymd_opt(2027, 1, 4).unwrap(),
        }
    }

    #[test]
    fn a_team_invitation_names_the_lead_what_accepting_means_how_to_answer_and_the_expiry() {
        let letter = team();
        let text = team_invitation_text("Bea", &letter);
        assert!(text.starts_with("Hello Bea,"), "{text}");
        assert!(text.contains("Ana Fitness invites you to join their team"));
        assert!(text.contains("becomes your team lead"));
        assert!(text.contains(&format!(
            "AnswerTeamInvitation with invitation id {}",
            letter.invitation_id
        )));
        assert!(text.contains("expires on 2026-12-13 09:30 UTC"), "{text}");
        assert_eq!(
            team_invitation_subject(&letter),
            "FitFlow: Ana Fitness invites you to their team"
        );
    }

    #[test]
    fn a_contract_invitation_names_the_studio_the_role_the_start_and_how_to_answer() {
        let letter = contract();
        let text = contract_invitation_text("Bea", &letter);
        assert!(text.contains("The studio Pulse Plateau invites you to work there as an employee, from 2027-01-04."), "{text}");
        assert!(text.contains(&format!(
            "AcceptContract or DeclineContract with contract id {}",
            letter.contract_id
        )));
        assert!(text.contains("stays open until you answer it or the studio withdraws it"));
        let contractor = ContractInvitationLetter {
            role: "contractor",
            ..letter
        };
        assert!(contract_invitation_text("Bea", &contractor).contains("as a contractor,"));
    }

    #[test]
    fn no_letter_carries_anything_but_its_own_ids() {
        // Whatever a reader could act on alone would be a token: the only
        // ids in a letter are the invitation's own, which need a signed-in
        // invitee to answer.
        for text in [
            team_invitation_text("Bea", &team()),
            contract_invitation_text("Bea", &contract()),
        ] {
            assert!(!text.contains("http"), "{text}");
            assert!(!text.to_lowercase().contains("token"), "{text}");
            assert!(!text.to_lowercase().contains("code"), "{text}");
        }
    }
}
