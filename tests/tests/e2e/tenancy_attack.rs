//! Tenancy's newest parts attacked as a hostile user would: the invitation
//! mail path (hostile names, unknown addresses, replays, floods, a mail
//! server that never answers), the completion of truncated tokens from
//! `GetActingFor` (edited tokens, two leads at once, a member who left), and
//! the studio search (hostile words, a flood of expensive searches beside a
//! bystander).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fitflow_e2e::{AUDIT, IDENTITY, Sandbox, bearer};
use fitflow_proto::tenancy as pb;
use fitflow_testkit::ReceivedMail;
use tonic::Code;
use uuid::Uuid;

use crate::identity_support::{reason, violated_fields};
use crate::tenancy::{
    TENANCY, claims_of, create_studio, date, member, member_trail, rates, tenancy, today, trainer,
    trainer_profile,
};

/// How long mail sent in the background may take to arrive.
const MAIL_WAIT: Duration = Duration::from_secs(15);

/// Latencies' percentile `percent` (0–100), from the slowest down.
fn percentile(latencies: &[Duration], percent: usize) -> Duration {
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    let index = (sorted.len() * percent).div_ceil(100).saturating_sub(1);
    sorted[index.min(sorted.len() - 1)]
}

fn median(latencies: &[Duration]) -> Duration {
    percentile(latencies, 50)
}

/// Inserts `count` active studios owned by `owner_id` as the database admin
/// (the API would take minutes), named `"{prefix} {n}"`; returns their ids.
async fn seed_studios(sandbox: &Sandbox, owner_id: &str, prefix: &str, count: i64) -> Vec<String> {
    let admin = sandbox.db.admin_pool().await;
    let owner = Uuid::parse_str(owner_id).expect("a uuid");
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO tenancy.studios \
             (id, owner_id, name, street, city, province, postal_code, time_zone) \
         SELECT gen_random_uuid(), $1, $2 || ' ' || n, '1 rue Principale', \
                (ARRAY['Montréal', 'Québec', 'Laval', 'Gatineau'])[1 + n % 4], \
                'QC', 'H2X1Y4', 'America/Toronto' \
         FROM generate_series(1, $3) AS n RETURNING id",
    )
    .bind(owner)
    .bind(prefix)
    .bind(count)
    .fetch_all(&admin)
    .await
    .expect("seed studios");
    ids.iter().map(ToString::to_string).collect()
}

/// A studio's invitation of `trainer_email`, starting `start`.
fn contract_request(
    studio_id: &str,
    trainer_email: &str,
    start: chrono::NaiveDate,
    request_id: &str,
) -> pb::CreateContractRequest {
    pb::CreateContractRequest {
        studio_id: studio_id.into(),
        trainer: Some(pb::create_contract_request::Trainer::TrainerEmail(
            trainer_email.into(),
        )),
        role: pb::ContractRole::Contractor as i32,
        start_date: date(start),
        rates: rates("50", None),
        request_id: request_id.into(),
    }
}

fn team_request(leader_id: &str, trainer_email: &str) -> pb::InviteTeamMemberRequest {
    pb::InviteTeamMemberRequest {
        leader_id: leader_id.into(),
        trainer: Some(pb::invite_team_member_request::Trainer::TrainerEmail(
            trainer_email.into(),
        )),
        request_id: String::new(),
    }
}

/// What a refusal tells the caller: code, reason and message.
fn told(status: &tonic::Status) -> (Code, String, String) {
    (status.code(), reason(status), status.message().to_owned())
}

/// Invitations (not sign-up mail) received by `email` so far.
fn invitations(sandbox: &Sandbox, email: &str) -> Vec<ReceivedMail> {
    sandbox
        .mail
        .received_by(email)
        .into_iter()
        .filter(|mail| {
            mail.header("subject")
                .is_some_and(|subject| decode_header(&subject).contains(" invites you "))
        })
        .collect()
}

/// A header value with its RFC 2047 encoded words (`=?utf-8?b?…?=`, as the
/// mailer writes non-ASCII text) decoded.
pub(crate) fn decode_header(value: &str) -> String {
    use base64::Engine as _;
    let mut decoded = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find("=?") {
        let before = &rest[..start];
        // Whitespace between two encoded words is not part of the text.
        if !before.trim().is_empty() || decoded.is_empty() {
            decoded.extend_from_slice(before.as_bytes());
        }
        let word = &rest[start + 2..];
        let end = word.find("?=").expect("an encoded word ends");
        let mut parts = word[..end].splitn(3, '?');
        let (charset, encoding, text) = (
            parts.next().expect("a charset"),
            parts.next().expect("an encoding"),
            parts.next().expect("a text"),
        );
        assert!(charset.eq_ignore_ascii_case("utf-8"), "{value}");
        assert!(encoding.eq_ignore_ascii_case("b"), "{value}");
        decoded.extend(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .expect("base64"),
        );
        rest = &word[end + 2..];
    }
    decoded.extend_from_slice(rest.as_bytes());
    String::from_utf8(decoded).expect("UTF-8")
}

/// The names of a message's header lines, in order.
fn header_names(mail: &ReceivedMail) -> Vec<String> {
    let (headers, _) = mail.data.split_once("\r\n\r\n").expect("headers");
    headers
        .split("\r\n")
        .filter(|line| !line.starts_with([' ', '\t']))
        .map(|line| {
            line.split_once(':')
                .expect("a header line")
                .0
                .to_ascii_lowercase()
        })
        .collect()
}

/// An SMTP server that accepts connections and never says a word; it
/// remembers the most connections it held open at once.
struct SilentSmtp {
    port: u16,
    most_open: Arc<AtomicUsize>,
    accepted: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl SilentSmtp {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind the silent server");
        let port = listener.local_addr().expect("its address").port();
        let open = Arc::new(AtomicUsize::new(0));
        let most_open = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (open_count, most, count) = (
            Arc::clone(&open),
            Arc::clone(&most_open),
            Arc::clone(&accepted),
        );
        let server = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let now_open = open_count.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now_open, Ordering::SeqCst);
                let open_count = Arc::clone(&open_count);
                tokio::spawn(async move {
                    use tokio::io::AsyncReadExt as _;
                    let mut buffer = [0_u8; 1024];
                    while matches!(stream.read(&mut buffer).await, Ok(read) if read > 0) {}
                    open_count.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            port,
            most_open,
            accepted,
            server,
        }
    }
}

impl Drop for SilentSmtp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

// ---------------------------------------------------------------- the mail path

#[tokio::test]
async fn names_that_hide_or_reorder_text_are_refused_where_an_invitation_would_mail_them() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (_, _, token) = member(&sandbox, "Olga").await;
    let mut client = tenancy(&sandbox, "gateway");

    for hidden in [
        "\u{202E}", "\u{202A}", "\u{2066}", "\u{2069}", "\u{200E}", "\u{200F}", "\u{061C}",
        "\u{200B}", "\u{2060}", "\u{FEFF}",
    ] {
        // "FitFlow: Pulse<RLO>ereht krow ot uoy setivni …" reads as
        // something else in the invitee's inbox.
        let name = format!("Pulse {hidden}Support");
        let studio = client
            .create_studio(bearer(
                pb::CreateStudioRequest {
                    studio: Some(crate::tenancy::studio_profile(&name, "")),
                    request_id: String::new(),
                },
                &token,
            ))
            .await
            .expect_err("a studio name that hides text");
        assert_eq!(studio.code(), Code::InvalidArgument, "{hidden:?}");
        assert_eq!(violated_fields(&studio), ["studio.name"], "{hidden:?}");

        let business = client
            .create_trainer(bearer(
                pb::CreateTrainerRequest {
                    trainer: Some(pb::Trainer {
                        business_name: name.clone(),
                        ..trainer_profile()
                    }),
                    request_id: String::new(),
                },
                &token,
            ))
            .await
            .expect_err("a business name that hides text");
        assert_eq!(business.code(), Code::InvalidArgument, "{hidden:?}");
        assert_eq!(
            violated_fields(&business),
            ["trainer.business_name"],
            "{hidden:?}"
        );
    }
    // Scripts that need joiners and marks are names all the same.
    for name in [
        "می\u{200C}خواهم",
        "Ana \u{1F469}\u{200D}\u{1F4BB}",
        "Zoë Lefèvre",
    ] {
        create_studio(&sandbox, &token, name, "").await;
    }
}

#[tokio::test]
async fn an_invitation_from_the_longest_and_strangest_valid_name_is_one_well_formed_mail() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (_, _, owner_token) = member(&sandbox, "Olga").await;
    let (_, trainer_email, _) = trainer(&sandbox, "Tara").await;
    // 200 characters: header-like text, quotes, backslashes, an emoji
    // sequence, combining marks and a line separator.
    let mut name = String::from(
        "Bcc: victim@example.com Subject: x \"quoted\" \\ =?utf-8?b?SGk=?= \
         e\u{301}te\u{301} \u{1F469}\u{200D}\u{1F4BB} \u{2028}Studio ",
    );
    while name.chars().count() < 200 {
        name.push('é');
    }
    let studio = create_studio(&sandbox, &owner_token, &name, "").await;
    tenancy(&sandbox, "gateway")
        .create_contract(bearer(
            contract_request(&studio.id, &trainer_email, today(), ""),
            &owner_token,
        ))
        .await
        .expect("invite");

    fitflow_testkit::eventually("the invitation is mailed", MAIL_WAIT, async || {
        !invitations(&sandbox, &trainer_email).is_empty()
    })
    .await;
    let mail = invitations(&sandbox, &trainer_email);
    assert_eq!(mail.len(), 1);
    let letter = &mail[0];
    assert_eq!(
        letter.to,
        std::slice::from_ref(&trainer_email),
        "one recipient"
    );
    assert!(
        sandbox.mail.received_by("victim@example.com").is_empty(),
        "no recipient from a name"
    );
    let names = header_names(letter);
    for header in ["subject", "to", "from", "bcc", "cc"] {
        assert!(
            names.iter().filter(|name| *name == header).count() <= 1,
            "{header} once: {names:?}"
        );
    }
    assert!(!names.contains(&"bcc".to_owned()), "{names:?}");
    let subject = decode_header(&letter.header("subject").expect("a subject"));
    assert_eq!(
        subject,
        format!("FitFlow: {} invites you to work there", name.trim())
    );
}

#[tokio::test]
async fn a_replayed_contract_invitation_is_mailed_once() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (_, _, owner_token) = member(&sandbox, "Olga").await;
    let (_, trainer_email, _) = trainer(&sandbox, "Tara").await;
    let studio = create_studio(&sandbox, &owner_token, "Harbour Studio", "").await;
    let other = create_studio(&sandbox, &owner_token, "Harbour Annex", "").await;
    let request_id = Uuid::new_v4().to_string();
    let mut client = tenancy(&sandbox, "gateway");

    let mut contract_ids = Vec::new();
    for _ in 0..5 {
        contract_ids.push(
            client
                .create_contract(bearer(
                    contract_request(&studio.id, &trainer_email, today(), &request_id),
                    &owner_token,
                ))
                .await
                .expect("a replay answers the same contract")
                .into_inner()
                .contract
                .expect("contract")
                .id,
        );
    }
    contract_ids.dedup();
    assert_eq!(contract_ids.len(), 1);
    // A later, different invitation is mailed: once it is in, the replays'
    // mail would have been too.
    client
        .create_contract(bearer(
            contract_request(&other.id, &trainer_email, today(), ""),
            &owner_token,
        ))
        .await
        .expect("another studio's invitation");
    fitflow_testkit::eventually("the second invitation is mailed", MAIL_WAIT, async || {
        invitations(&sandbox, &trainer_email)
            .iter()
            .any(|mail| mail.text().contains("Harbour Annex"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let from_the_first = invitations(&sandbox, &trainer_email)
        .iter()
        .filter(|mail| mail.text().contains("Harbour Studio"))
        .count();
    assert_eq!(from_the_first, 1, "a replay mails nothing more");
}

#[tokio::test]
async fn an_invitation_to_an_unknown_address_answers_as_one_to_an_account_whatever_else_is_wrong() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (lead_id, _, lead_token) = trainer(&sandbox, "Lena").await;
    let (_, _, owner_token) = member(&sandbox, "Olga").await;
    let (_, _, stranger_token) = member(&sandbox, "Sam").await;
    let (_, no_profile_email, _) = member(&sandbox, "Nadia").await;
    let unknown_email = format!("nobody-{}@example.com", Uuid::new_v4().simple());
    let studio = create_studio(&sandbox, &owner_token, "Studio Nord", "").await;
    let used_request_id = Uuid::new_v4().to_string();
    tenancy(&sandbox, "gateway")
        .create_studio(bearer(
            pb::CreateStudioRequest {
                studio: Some(crate::tenancy::studio_profile("Studio Sud", "")),
                request_id: used_request_id.clone(),
            },
            &owner_token,
        ))
        .await
        .expect("a request id used once");
    let yesterday = today() - chrono::Duration::days(1);
    let mut client = tenancy(&sandbox, "gateway");

    // Each case is wrong in another way than the address; the answer must
    // not depend on whether the address is an account.
    let mut answers = Vec::new();
    for email in [&unknown_email, &no_profile_email] {
        let mut told_for_email = Vec::new();
        for (token, start, request_id) in [
            (&owner_token, yesterday, ""),
            (&stranger_token, today(), ""),
            (&owner_token, today(), used_request_id.as_str()),
            (&owner_token, today(), ""),
        ] {
            let status = client
                .create_contract(bearer(
                    contract_request(&studio.id, email, start, request_id),
                    token,
                ))
                .await
                .expect_err("no trainer to invite");
            told_for_email.push(told(&status));
        }
        for token in [&lead_token, &stranger_token] {
            let status = client
                .invite_team_member(bearer(team_request(&lead_id, email), token))
                .await
                .expect_err("no trainer to invite");
            told_for_email.push(told(&status));
        }
        answers.push(told_for_email);
    }
    assert_eq!(
        answers[0], answers[1],
        "the answers tell an unknown address from an account"
    );
    assert_eq!(answers[0][3].1, "TRAINER_NOT_FOUND");
    assert!(sandbox.mail.received_by(&unknown_email).is_empty());
}

#[tokio::test]
async fn inviting_an_unknown_address_takes_as_long_as_inviting_an_account_without_a_profile() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (lead_id, _, lead_token) = trainer(&sandbox, "Lena").await;
    let (_, _, owner_token) = member(&sandbox, "Olga").await;
    let (_, no_profile_email, _) = member(&sandbox, "Nadia").await;
    let studio = create_studio(&sandbox, &owner_token, "Studio Nord", "").await;
    let mut client = tenancy(&sandbox, "gateway");

    const ROUNDS: usize = 40;
    let (mut unknown, mut account) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS + 5 {
        let unknown_email = format!("nobody-{}@example.com", Uuid::new_v4().simple());
        // Interleaved, so that load on the machine falls on both alike.
        let order = if round % 2 == 0 {
            [(&unknown_email, true), (&no_profile_email, false)]
        } else {
            [(&no_profile_email, false), (&unknown_email, true)]
        };
        for (email, is_unknown) in order {
            let started = Instant::now();
            let team = client
                .invite_team_member(bearer(team_request(&lead_id, email), &lead_token))
                .await
                .expect_err("no trainer");
            let contract = client
                .create_contract(bearer(
                    contract_request(&studio.id, email, today(), ""),
                    &owner_token,
                ))
                .await
                .expect_err("no trainer");
            let took = started.elapsed();
            assert_eq!(reason(&team), "TRAINER_NOT_FOUND");
            assert_eq!(reason(&contract), "TRAINER_NOT_FOUND");
            // The first rounds warm connections and plans.
            if round >= 5 {
                if is_unknown {
                    unknown.push(took);
                } else {
                    account.push(took);
                }
            }
        }
    }
    let (unknown, account) = (median(&unknown), median(&account));
    let (fast, slow) = (unknown.min(account), unknown.max(account));
    assert!(
        slow.as_secs_f64() < fast.as_secs_f64() * 1.5 + 0.001,
        "median unknown {unknown:?}, account without a profile {account:?}"
    );
}

#[tokio::test]
async fn a_mail_server_that_never_answers_holds_few_connections_and_delays_no_request() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, AUDIT]).await;
    let silent = SilentSmtp::start().await;
    sandbox.release_port(TENANCY);
    let mut settings = sandbox.settings(&[TENANCY]).await;
    settings.mail = Some(fitflow_mail::MailSettings {
        url: format!("smtp://127.0.0.1:{}", silent.port),
        from: "FitFlow <no-reply@fitflow.test>".into(),
    });
    let _tenancy = fitflow::Stack::start(&sandbox.registry, settings)
        .await
        .expect("tenancy starts");
    sandbox.wait_until_serving(TENANCY).await;

    const INVITATIONS: usize = 200;
    let (owner_id, _, owner_token) = member(&sandbox, "Olga").await;
    let (_, trainer_email, _) = trainer(&sandbox, "Tara").await;
    let (bystander_id, _, bystander_token) = trainer(&sandbox, "Bea").await;
    let studios = seed_studios(&sandbox, &owner_id, "Flood Studio", 200).await;
    let client = tenancy(&sandbox, "gateway");

    let invitations = studios.iter().take(INVITATIONS).map(|studio_id| {
        let mut client = client.clone();
        let request = contract_request(studio_id, &trainer_email, today(), "");
        let token = owner_token.clone();
        async move {
            let started = Instant::now();
            let outcome = client.create_contract(bearer(request, &token)).await;
            (outcome.map(|_| ()), started.elapsed())
        }
    });
    let flood = futures::future::join_all(invitations);
    // Another client, on its own connection.
    let bystander = async {
        let mut client = tenancy(&sandbox, "gateway");
        let mut latencies = Vec::new();
        for _ in 0..40 {
            let started = Instant::now();
            client
                .get_trainer(bearer(
                    pb::GetTrainerRequest {
                        trainer_id: bystander_id.clone(),
                    },
                    &bystander_token,
                ))
                .await
                .expect("the bystander is served");
            latencies.push(started.elapsed());
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        latencies
    };
    let (outcomes, bystander) = tokio::join!(flood, bystander);
    let mut latencies = Vec::new();
    for (outcome, took) in outcomes {
        outcome.expect("every invitation is answered");
        latencies.push(took);
    }
    // Every mail task has reached the server (or its place in line) by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(silent.accepted.load(Ordering::SeqCst) > 0, "mail was tried");
    let most_open = silent.most_open.load(Ordering::SeqCst);
    assert!(
        most_open <= fitflow_mail::MAX_SENDING,
        "{most_open} connections held open to a silent mail server"
    );
    // No answer waits on the mail server, which would hold it for at least
    // the mailer's 10 s a command. What the bystander waits for is the 200
    // invitations' own transactions in the pool (p99 0.8-2.2 s on 2 cores).
    assert!(
        percentile(&latencies, 99) < Duration::from_secs(10),
        "invitations p99 {:?}",
        percentile(&latencies, 99)
    );
    assert!(
        percentile(&bystander, 99) < Duration::from_secs(5),
        "bystander p99 {:?}",
        percentile(&bystander, 99)
    );
}

// ------------------------------------------------- completion of truncated tokens

/// `token` with its claims edited by `edit` and its signature kept.
fn edited(token: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    use base64::Engine as _;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut claims = claims_of(token);
    edit(&mut claims);
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&claims).expect("JSON"));
    parts.join(".")
}

#[tokio::test]
async fn an_edited_token_that_says_claims_truncated_is_refused_before_tenancy_is_asked() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (_, _, token) = trainer(&sandbox, "Lena").await;
    let (victim_id, _, _) = trainer(&sandbox, "Vic").await;
    assert_eq!(
        member_trail(&sandbox, &token, &victim_id).await,
        Code::PermissionDenied
    );

    let forgeries = [
        edited(&token, |claims| {
            claims["claims_truncated"] = serde_json::Value::Bool(true);
        }),
        edited(&token, |claims| {
            claims["claims_truncated"] = serde_json::Value::Bool(true);
            claims["sup"] = serde_json::json!([victim_id]);
        }),
        edited(&token, |claims| {
            claims["claims_truncated"] = serde_json::Value::Bool(true);
            claims["sub"] = serde_json::Value::String(victim_id.clone());
        }),
        edited(&token, |claims| {
            claims["claims_truncated"] = serde_json::Value::String("true".into());
        }),
    ];
    for forged in &forgeries {
        assert_eq!(
            member_trail(&sandbox, forged, &victim_id).await,
            Code::Unauthenticated
        );
    }
}

/// Members seeded below a lead: more than the 256 ids a token carries.
const MEMBERS: i64 = 300;

/// Seeds `MEMBERS` trainers in `lead_id`'s team as the database admin.
async fn seed_team(sandbox: &Sandbox, lead_id: &str) -> Vec<String> {
    let admin = sandbox.db.admin_pool().await;
    let lead = Uuid::parse_str(lead_id).expect("a uuid");
    let members: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO tenancy.trainers (id, business_name, time_zone, province) \
         SELECT gen_random_uuid(), 'Seeded ' || n, 'America/Toronto', 'ON' \
         FROM generate_series(1, $1) AS n RETURNING id",
    )
    .bind(MEMBERS)
    .fetch_all(&admin)
    .await
    .expect("seed trainers");
    sqlx::query(
        "INSERT INTO tenancy.team_links (trainer_id, leader_id) SELECT unnest($1::uuid[]), $2",
    )
    .bind(&members)
    .bind(lead)
    .execute(&admin)
    .await
    .expect("seed the team");
    members.iter().map(ToString::to_string).collect()
}

/// A lead of `MEMBERS` with a truncated token: email, token and the members
/// beyond the token's cap.
async fn truncated_lead(sandbox: &Sandbox, name: &str) -> (String, String, Vec<String>) {
    let (lead_id, lead_email, _) = trainer(sandbox, name).await;
    let members = seed_team(sandbox, &lead_id).await;
    let token = sandbox.login(&lead_email).await.access_token;
    let claims = claims_of(&token);
    assert_eq!(claims["claims_truncated"], serde_json::Value::Bool(true));
    let carried = crate::tenancy::ids(&claims, "sup");
    let beyond: Vec<String> = members
        .into_iter()
        .filter(|id| !carried.contains(id))
        .collect();
    assert!(beyond.len() >= 44, "{}", beyond.len());
    (lead_email, token, beyond)
}

#[tokio::test]
async fn two_truncated_leads_at_once_each_reach_only_their_own_members_beyond_the_cap() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (_, token_a, beyond_a) = truncated_lead(&sandbox, "Ada").await;
    let (_, token_b, beyond_b) = truncated_lead(&sandbox, "Bo").await;

    // Interleaved and concurrent: a completion cached under the wrong user
    // would show as one lead reaching the other's member.
    let probes = (0..60).map(|index| {
        let (token, own, other) = if index % 2 == 0 {
            (&token_a, &beyond_a, &beyond_b)
        } else {
            (&token_b, &beyond_b, &beyond_a)
        };
        let sandbox = &sandbox;
        async move {
            let member = &own[index % own.len()];
            let foreign = &other[index % other.len()];
            (
                member_trail(sandbox, token, member).await,
                member_trail(sandbox, token, foreign).await,
            )
        }
    });
    for (own, foreign) in futures::future::join_all(probes).await {
        assert_eq!(own, Code::Ok);
        assert_eq!(foreign, Code::PermissionDenied);
    }
}

#[tokio::test]
async fn a_token_refreshed_right_after_a_member_left_never_reaches_them() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (lead_email, token, beyond) = truncated_lead(&sandbox, "Lena").await;

    for leaving in beyond.iter().take(3) {
        // The lead's completion is fetched and remembered just before the
        // member leaves, most often within the same second.
        let token = sandbox.login(&lead_email).await.access_token;
        assert_eq!(member_trail(&sandbox, &token, leaving).await, Code::Ok);
        tenancy(&sandbox, "gateway")
            .leave_team(bearer(
                pb::LeaveTeamRequest {
                    trainer_id: leaving.clone(),
                },
                &token,
            ))
            .await
            .expect("the lead removes the member");
        sandbox.structure_settled().await;
        let refreshed = sandbox.login(&lead_email).await.access_token;
        assert_eq!(
            member_trail(&sandbox, &refreshed, leaving).await,
            Code::PermissionDenied,
            "a token issued after the change met an answer from before it"
        );
    }
    assert_eq!(
        member_trail(&sandbox, &token, &beyond[5]).await,
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn a_flood_of_truncated_token_requests_is_answered_with_tenancy_up_and_down() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, AUDIT]).await;
    let tenancy_stack = sandbox.start(&[TENANCY]).await;
    let (_, token, beyond) = truncated_lead(&sandbox, "Lena").await;

    let flood = |expected: Code| {
        let (sandbox, token, beyond) = (&sandbox, &token, &beyond);
        async move {
            let requests = (0..300).map(|index| async move {
                let started = Instant::now();
                let code = member_trail(sandbox, token, &beyond[index % beyond.len()]).await;
                (code, started.elapsed())
            });
            let mut latencies = Vec::new();
            for (code, took) in futures::future::join_all(requests).await {
                assert_eq!(code, expected);
                latencies.push(took);
            }
            percentile(&latencies, 99)
        }
    };
    let p99 = flood(Code::Ok).await;
    assert!(p99 < Duration::from_secs(5), "p99 {p99:?} with tenancy up");

    // Without tenancy only the carried ids count, and the flood is still
    // answered at once (one failed fetch, then the backoff).
    tenancy_stack.shutdown().await;
    // The answer remembered before stands for its 2 s.
    tokio::time::sleep(fitflow_auth::STRUCTURE_TTL + Duration::from_millis(500)).await;
    let p99 = flood(Code::PermissionDenied).await;
    assert!(
        p99 < Duration::from_secs(5),
        "p99 {p99:?} with tenancy down"
    );
}

// ------------------------------------------------------------------- search

fn search(query: &str, page_size: i32) -> pb::ListStudiosRequest {
    pb::ListStudiosRequest {
        query: query.into(),
        page_size,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_search_with_any_words_operators_or_scripts_is_answered_as_words_never_internally() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (_, _, token) = member(&sandbox, "Olivia").await;
    let studio = create_studio(&sandbox, &token, "Yoga Nord", "").await;
    let mut client = tenancy(&sandbox, "gateway");

    let hundred_emoji = "\u{1F600}".repeat(100);
    let one_letter_words = "a b c d e f g h i j k l m n o p q r s t u v w x y z a b c d e";
    let long_word = "y".repeat(100);
    let combining = "\u{301}".repeat(100);
    let hostile = [
        "yoga' OR '1'='1",
        "yoga\\' & nord",
        "yoga:*A & nord:*B",
        "yoga:A|nord",
        "!!yoga",
        "((((((((((yoga",
        "yoga))))))))))",
        "yoga <-> <-> nord",
        "⑴⑵⑶ yoga",
        "ab⑴ cd⒈",
        "١٢٣ ۴۵۶ ߁߂߃",
        "²³¹ ⁴⁵⁶ yoga",
        "İİİ ǅǅǅ ßßß",
        "ﬁﬂﬃ yoga",
        "𝐲𝐨𝐠𝐚",
        "yoga\u{301}\u{301}\u{301}",
        "\u{202E}yoga\u{202C}",
        "\u{2028}yoga\u{2029}",
        "\u{3000}yoga\u{3000}nord",
        "the and of a",
        ".,;:!?()[]{}<>|&*'\"\\/",
        one_letter_words,
        &hundred_emoji,
        &long_word,
        &combining,
    ];
    for query in hostile {
        let outcome = client.list_studios(bearer(search(query, 0), &token)).await;
        assert!(outcome.is_ok(), "{query:?}: {outcome:?}");
    }
    // Only words count, every one required: operators and quotes around
    // the words still find the studio.
    for query in [
        "'yoga'",
        "yoga\\' & nord",
        "((((((((((yoga",
        "!!yoga",
        "\u{202E}yoga\u{202C}",
    ] {
        let found = client
            .list_studios(bearer(search(query, 0), &token))
            .await
            .expect("search")
            .into_inner()
            .studios;
        assert!(found.iter().any(|found| found.id == studio.id), "{query:?}");
    }
    for query in ["yoga\0", "yoga\u{1b}[2J", "\u{85}yoga", "yoga\r\nnord"] {
        let status = client
            .list_studios(bearer(search(query, 0), &token))
            .await
            .expect_err("a control character");
        assert_eq!(status.code(), Code::InvalidArgument, "{query:?}");
        assert_eq!(violated_fields(&status), ["query"], "{query:?}");
    }
    for size in [-1, i32::MIN] {
        let status = client
            .list_studios(bearer(search("yoga", size), &token))
            .await
            .expect_err("a negative page size");
        assert_eq!(violated_fields(&status), ["page_size"], "{size}");
    }
    // Beyond the maximum, a page is cut to it (AIP-158).
    for size in [1, 200, 201, i32::MAX] {
        let found = client
            .list_studios(bearer(search("yoga", size), &token))
            .await
            .expect("a page size of any positive number")
            .into_inner()
            .studios;
        assert_eq!(found.len(), 1, "{size}");
    }
}

#[tokio::test]
async fn five_hundred_expensive_searches_at_once_leave_a_bystander_served_promptly() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (owner_id, _, owner_token) = member(&sandbox, "Olivia").await;
    let (bystander_id, _, bystander_token) = trainer(&sandbox, "Bea").await;
    seed_studios(&sandbox, &owner_id, "Studio Pulse", 20_000).await;
    let admin = sandbox.db.admin_pool().await;
    sqlx::query("ANALYZE tenancy.studios")
        .execute(&admin)
        .await
        .expect("analyze");
    let client = tenancy(&sandbox, "gateway");

    // Words every studio holds (a whole page of matches to sort), one-letter
    // words, prefixes of every name, and words that match nothing.
    let patterns = [
        "studio pulse",
        "s t u d i o p u",
        "stu pul mon",
        "a b c d e f g h",
        "zzz yyy xxx www",
        "1 2 3 4 5 6 7 8",
    ];
    let searches = (0..500).map(|index| {
        let mut client = client.clone();
        let token = owner_token.clone();
        let query = patterns[index % patterns.len()];
        async move {
            client
                .list_studios(bearer(search(query, 200), &token))
                .await
                .map(|_| ())
        }
    });
    let flood = futures::future::join_all(searches);
    // Another client, on its own connection: on the flood's connection it
    // would wait at the server's limit of RPCs per connection first.
    let bystander = async {
        let mut client = tenancy(&sandbox, "gateway");
        let mut latencies = Vec::new();
        for _ in 0..40 {
            let started = Instant::now();
            client
                .get_trainer(bearer(
                    pb::GetTrainerRequest {
                        trainer_id: bystander_id.clone(),
                    },
                    &bystander_token,
                ))
                .await
                .expect("the bystander is served");
            latencies.push(started.elapsed());
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        latencies
    };
    let started = Instant::now();
    let (outcomes, bystander) = tokio::join!(flood, bystander);
    let flood_took = started.elapsed();
    for (index, outcome) in outcomes.into_iter().enumerate() {
        outcome.unwrap_or_else(|status| panic!("search {index}: {status:?}"));
    }
    let p99 = percentile(&bystander, 99);
    assert!(
        p99 < Duration::from_secs(1),
        "bystander p50 {:?} p99 {p99:?} while 500 searches took {flood_took:?}",
        median(&bystander)
    );
}
