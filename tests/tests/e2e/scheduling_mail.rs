//! Scheduling's mail to clients, end to end through the test kit's SMTP
//! sink: a booking confirmation, a waitlist promotion, a cancellation and a
//! reminder reach the client's address (clients' `GetContact`) once each —
//! a replayed booking, two racing sweeps and a restart included — in the
//! trainer's local time with the zone named, in French for a client in
//! Quebec, never with the client's health information; a client without an
//! email is skipped and recorded so; every notice is audit-visible.

use std::time::Duration;

use chrono::Utc;
use fitflow_e2e::{AUDIT, Sandbox, bearer};
use fitflow_proto::audit::audit_service_client::AuditServiceClient;
use fitflow_proto::audit::{Action, EventFilter, ListEventsRequest};
use fitflow_proto::clients as clients_pb;
use fitflow_proto::clients::clients_service_client::ClientsServiceClient;
use fitflow_proto::scheduling as pb;
use fitflow_proto::types::{PostalAddress, Province};
use fitflow_testkit::ReceivedMail;
use tonic::Code;

use crate::clients::{create, full_client};
use crate::documentation::CLIENTS;
use crate::identity_support::reason;
use crate::scheduling::{EVERYONE, at, class_type, next_year, scheduling};
use crate::tenancy::trainer;
use crate::tenancy_attack::decode_header;

/// How long a test waits for the relay's mail.
pub(crate) const MAIL_WAIT: Duration = Duration::from_secs(20);
/// How long a test watches for a second copy that must not come.
const QUIET: Duration = Duration::from_secs(3);
/// What the test clients' records hold about their health (`full_client`).
const HEALTH_WORDS: &[&str] = &["asthma", "salbutamol", "peanuts", "10 km"];

/// A client of the trainer whose `token` this is, with `email` (none when
/// empty), an address in `province` and health information on file; its id.
pub(crate) async fn client(
    sandbox: &Sandbox,
    token: &str,
    email: &str,
    province: Province,
) -> String {
    let mut record = full_client("Zoé", "Roy", email, "");
    if province != Province::Qc {
        record.address = Some(PostalAddress {
            street: "1 King St W".into(),
            city: "Toronto".into(),
            province: province as i32,
            postal_code: "M5H 1A1".into(),
            country_code: String::new(),
        });
    }
    create(sandbox, token, record)
        .await
        .expect("create client")
        .id
}

pub(crate) fn email() -> String {
    format!("client-{}@example.ca", uuid::Uuid::new_v4())
}

/// The subject as the reader sees it (RFC 2047 words decoded).
fn subject(mail: &ReceivedMail) -> String {
    decode_header(&mail.header("subject").unwrap_or_default())
}

/// The mail for `address` whose subject holds `words`.
fn mail_to(sandbox: &Sandbox, address: &str, words: &str) -> Vec<ReceivedMail> {
    sandbox
        .mail
        .received_by(address)
        .into_iter()
        .filter(|mail| subject(mail).contains(words))
        .collect()
}

/// Waits until a mail for `address` whose subject holds `words` arrived,
/// then watches a little longer; every such mail.
async fn wait_for_mail(sandbox: &Sandbox, address: &str, words: &str) -> Vec<ReceivedMail> {
    fitflow_testkit::eventually(
        &format!("mail \"{words}\" for the client"),
        MAIL_WAIT,
        async || !mail_to(sandbox, address, words).is_empty(),
    )
    .await;
    tokio::time::sleep(QUIET).await;
    mail_to(sandbox, address, words)
}

/// Books `class_type_id` at `start` for `client_id` with `request_id`.
pub(crate) async fn book_with(
    sandbox: &Sandbox,
    token: &str,
    class_type_id: &str,
    start: chrono::DateTime<Utc>,
    client_id: &str,
    request_id: &str,
) -> Result<pb::Appointment, tonic::Status> {
    scheduling(sandbox)
        .book_appointment(bearer(
            pb::BookAppointmentRequest {
                appointment: Some(pb::Appointment {
                    class_type_id: class_type_id.into(),
                    start_time: at(start),
                    client_id: client_id.into(),
                    location_type: pb::LocationType::Online as i32,
                    location_details: "https://meet.example/zoe-private-room".into(),
                    ..Default::default()
                }),
                request_id: request_id.into(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().appointment.expect("appointment"))
}

async fn join(sandbox: &Sandbox, token: &str, appointment_id: &str, client_id: &str) -> i32 {
    scheduling(sandbox)
        .join_class(bearer(
            pb::JoinClassRequest {
                appointment_id: appointment_id.into(),
                client_id: client_id.into(),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            token,
        ))
        .await
        .expect("join")
        .into_inner()
        .participant
        .expect("participant")
        .status
}

/// The notifications recorded for `appointment_id`: (client, kind, status,
/// outcome, attempts), read as the database owner.
pub(crate) async fn notifications(
    sandbox: &Sandbox,
    appointment_id: &str,
) -> Vec<(String, String, String, String, i32)> {
    let admin = sandbox.db.admin_pool().await;
    sqlx::query_as(
        "SELECT client_id::text, kind, status, outcome, attempts \
         FROM scheduling.appointment_notifications WHERE appointment_id = $1::uuid \
         ORDER BY created_at, id",
    )
    .bind(appointment_id)
    .fetch_all(&admin)
    .await
    .expect("read notifications")
}

/// The audit events of the trainer's notifications, once `count` arrived:
/// (action, changes as field=value).
async fn notification_events(
    sandbox: &Sandbox,
    (trainer_id, _, token): &(String, String, String),
    count: usize,
) -> Vec<(i32, Vec<String>)> {
    let deadline = std::time::Instant::now() + MAIL_WAIT;
    loop {
        let events: Vec<(i32, Vec<String>)> =
            AuditServiceClient::new(sandbox.channel(AUDIT, "gateway"))
                .list_events(bearer(
                    ListEventsRequest {
                        filter: Some(EventFilter {
                            tenant_id: trainer_id.clone(),
                            resource_type: "appointment_notifications".into(),
                            ..Default::default()
                        }),
                        page_size: 100,
                        ..Default::default()
                    },
                    token,
                ))
                .await
                .expect("list events")
                .into_inner()
                .events
                .into_iter()
                .filter_map(|stored| stored.event)
                .map(|event| {
                    let changes = event
                        .changes
                        .iter()
                        .map(|change| format!("{}={}", change.field, change.new_value))
                        .collect();
                    (event.action, changes)
                })
                .collect();
        if events.len() >= count || std::time::Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn assert_no_health_information(mail: &ReceivedMail) {
    let whole = format!("{}\n{}", subject(mail), mail.text()).to_lowercase();
    for word in HEALTH_WORDS {
        assert!(!whole.contains(word), "the mail mentions {word}: {whole}");
    }
    assert!(!whole.contains("85"), "no price: {whole}");
    assert!(
        !whole.contains("zoe-private-room"),
        "no location details: {whole}"
    );
}

#[tokio::test]
async fn a_booking_is_confirmed_once_at_the_clients_address_in_the_trainers_time_without_health_information()
 {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let address = email();
    let zoe = client(&sandbox, &ana.2, &address, Province::On).await;
    let individual = class_type(&sandbox, &ana.2, pb::ClassCategory::Individual, 1).await;
    // 15:00 UTC on 10 March is 10:00 in Toronto (standard time until the 14th).
    let start = next_year(3, 10, 15);
    let request_id = uuid::Uuid::new_v4().to_string();
    let booked = book_with(&sandbox, &ana.2, &individual.id, start, &zoe, &request_id)
        .await
        .expect("book");
    let replayed = book_with(&sandbox, &ana.2, &individual.id, start, &zoe, &request_id)
        .await
        .expect("a replay answers the same booking");
    assert_eq!(replayed.id, booked.id);

    let mail = wait_for_mail(&sandbox, &address, "booking confirmed").await;
    assert_eq!(mail.len(), 1, "one confirmation, the replay none");
    let letter = &mail[0];
    let year = chrono::Datelike::year(&start);
    let when = format!("10 March {year} at 10:00 EST (America/Toronto)");
    assert!(subject(letter).starts_with("FitFlow: booking confirmed, Strength on "));
    assert!(subject(letter).contains(&when), "{}", subject(letter));
    let text = letter.text();
    assert!(text.starts_with("Hello Zoé,"), "{text}");
    assert!(text.contains("Your place in Strength on "), "{text}");
    assert!(text.contains(&when), "{text}");
    assert!(text.contains("Where: online."), "{text}");
    assert_no_health_information(letter);

    // The relay settles a notice after the mail server took it.
    let expected = [(
        zoe.clone(),
        "booked".to_owned(),
        "sent".to_owned(),
        String::new(),
        0,
    )];
    fitflow_testkit::eventually("the confirmation is settled", MAIL_WAIT, async || {
        notifications(&sandbox, &booked.id).await == expected
    })
    .await;
    // Audit-visible: the notice recorded with the booking, and its sending,
    // each naming the appointment, the client and the kind.
    let events = notification_events(&sandbox, &ana, 2).await;
    let expected_common = [
        format!("appointment_id={}", booked.id),
        format!("client_id={zoe}"),
        "kind=booked".to_owned(),
    ];
    let created = events
        .iter()
        .find(|(action, _)| *action == Action::Create as i32)
        .expect("a CREATE event");
    let sent = events
        .iter()
        .find(|(action, _)| *action == Action::Update as i32)
        .expect("an UPDATE event");
    for field in &expected_common {
        assert!(created.1.contains(field), "{created:?}");
        assert!(sent.1.contains(field), "{sent:?}");
    }
    assert!(sent.1.contains(&"status=sent".to_owned()), "{sent:?}");
    assert_eq!(events.len(), 2, "{events:?}");
}

#[tokio::test]
async fn a_waitlisted_client_is_mailed_when_a_place_frees_up_and_the_one_who_left_is_told_too() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let (first_address, second_address) = (email(), email());
    let first = client(&sandbox, &ana.2, &first_address, Province::On).await;
    let second = client(&sandbox, &ana.2, &second_address, Province::On).await;
    let group = class_type(&sandbox, &ana.2, pb::ClassCategory::Group, 1).await;
    let class = book_with(
        &sandbox,
        &ana.2,
        &group.id,
        next_year(4, 6, 22),
        "",
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect("book the class");
    assert_eq!(
        join(&sandbox, &ana.2, &class.id, &first).await,
        pb::ParticipantStatus::Confirmed as i32
    );
    assert_eq!(
        join(&sandbox, &ana.2, &class.id, &second).await,
        pb::ParticipantStatus::Waitlisted as i32
    );
    let confirmed = wait_for_mail(&sandbox, &first_address, "booking confirmed").await;
    assert_eq!(confirmed.len(), 1);
    assert!(
        sandbox.mail.received_by(&second_address).is_empty(),
        "a place on the waitlist is not a booking"
    );

    let left = scheduling(&sandbox)
        .leave_class(bearer(
            pb::LeaveClassRequest {
                appointment_id: class.id.clone(),
                client_id: first.clone(),
            },
            &ana.2,
        ))
        .await
        .expect("leave")
        .into_inner();
    assert_eq!(
        left.promoted.expect("promoted").client_id,
        second,
        "the first waitlisted takes the place"
    );
    let promoted = wait_for_mail(&sandbox, &second_address, "a place opened up for you").await;
    assert_eq!(promoted.len(), 1);
    let text = promoted[0].text();
    assert!(text.contains("you were on the waitlist"), "{text}");
    assert!(text.contains("Where: online."), "{text}");
    assert_no_health_information(&promoted[0]);
    let cancelled = wait_for_mail(&sandbox, &first_address, "cancelled").await;
    assert_eq!(cancelled.len(), 1, "the one who left hears of it");
    assert_eq!(sandbox.mail.received_by(&second_address).len(), 1);

    // The relay settles each notice after the mail server took it.
    fitflow_testkit::eventually("the class's notices are settled", MAIL_WAIT, async || {
        notifications(&sandbox, &class.id)
            .await
            .iter()
            .all(|(_, _, status, _, _)| status != "pending")
    })
    .await;
    let mut kinds: Vec<(String, String, String)> = notifications(&sandbox, &class.id)
        .await
        .into_iter()
        .map(|(client, kind, status, _, _)| (client, kind, status))
        .collect();
    kinds.sort();
    let mut expected = vec![
        (first.clone(), "booked".to_owned(), "sent".to_owned()),
        (first.clone(), "cancelled".to_owned(), "sent".to_owned()),
        (second.clone(), "promoted".to_owned(), "sent".to_owned()),
    ];
    expected.sort();
    assert_eq!(kinds, expected);
}

#[tokio::test]
async fn cancelling_mails_the_client_in_french_when_they_live_in_quebec() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let address = email();
    let zoe = client(&sandbox, &ana.2, &address, Province::Qc).await;
    let individual = class_type(&sandbox, &ana.2, pb::ClassCategory::Individual, 1).await;
    // 14:00 UTC on 5 July is 10:00 in Toronto (daylight time).
    let booked = book_with(
        &sandbox,
        &ana.2,
        &individual.id,
        next_year(7, 5, 14),
        &zoe,
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect("book");
    let confirmed = wait_for_mail(&sandbox, &address, "réservation confirmée").await;
    assert_eq!(confirmed.len(), 1);
    scheduling(&sandbox)
        .cancel_appointment(bearer(
            pb::CancelAppointmentRequest {
                appointment_id: booked.id.clone(),
                reason: "The client has a flare-up of asthma".into(),
                etag: booked.etag.clone(),
                ..Default::default()
            },
            &ana.2,
        ))
        .await
        .expect("cancel");
    let cancelled = wait_for_mail(&sandbox, &address, "annulation").await;
    assert_eq!(cancelled.len(), 1);
    let letter = &cancelled[0];
    assert!(
        subject(letter).starts_with("FitFlow : annulation, Strength le "),
        "{}",
        subject(letter)
    );
    let text = letter.text();
    assert!(text.starts_with("Bonjour Zoé,"), "{text}");
    assert!(text.contains("est annulée"), "{text}");
    assert!(text.contains("à 10 h 00 EDT (America/Toronto)"), "{text}");
    assert!(text.contains("Lieu : en ligne."), "{text}");
    assert_no_health_information(letter);
    assert!(
        !text.to_lowercase().contains("flare-up"),
        "the cancellation reason stays with the trainer: {text}"
    );
}

#[tokio::test]
async fn a_reminder_is_sent_once_though_sweeps_race_and_the_service_restarts() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let address = email();
    let zoe = client(&sandbox, &ana.2, &address, Province::On).await;
    let individual = class_type(&sandbox, &ana.2, pb::ClassCategory::Individual, 1).await;
    let soon = chrono::DurationRound::duration_trunc(
        Utc::now() + chrono::Duration::hours(2),
        chrono::Duration::minutes(1),
    )
    .expect("a whole minute");
    let booked = book_with(
        &sandbox,
        &ana.2,
        &individual.id,
        soon,
        &zoe,
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect("book");
    wait_for_mail(&sandbox, &address, "booking confirmed").await;
    // Booked now, inside its 24-hour window: the confirmation was its notice.
    let system = fitflow_db::connect_system(&sandbox.db.system_url("scheduling"), "scheduling", 4)
        .await
        .expect("scheduling's system pool");
    let lead = fitflow_scheduling::notify::DEFAULT_REMINDER_LEAD;
    let none = fitflow_scheduling::notify::sweep_reminders(&system, Utc::now(), lead)
        .await
        .expect("sweep");
    assert_eq!(none, 0, "a booking inside the window gets no reminder");

    // As if it had been booked two days ago.
    let admin = sandbox.db.admin_pool().await;
    sqlx::query(
        "UPDATE scheduling.appointments SET created_at = now() - interval '2 days' \
         WHERE id = $1::uuid",
    )
    .bind(&booked.id)
    .execute(&admin)
    .await
    .expect("backdate the booking");

    // Two sweeps at once, as two replicas would: one reminder recorded.
    let now = Utc::now();
    let (first, second) = tokio::join!(
        fitflow_scheduling::notify::sweep_reminders(&system, now, lead),
        fitflow_scheduling::notify::sweep_reminders(&system, now, lead),
    );
    assert_eq!(first.expect("sweep") + second.expect("sweep"), 1);
    let reminders = wait_for_mail(&sandbox, &address, "reminder").await;
    assert_eq!(reminders.len(), 1);
    let text = reminders[0].text();
    assert!(
        text.contains("A reminder: Strength is coming up on "),
        "{text}"
    );
    assert!(text.contains("(America/Toronto)"), "{text}");
    assert_no_health_information(&reminders[0]);

    // A restart sweeps at once: nothing is recorded or sent again.
    stack.shutdown().await;
    let stack = sandbox.start(EVERYONE).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(mail_to(&sandbox, &address, "reminder").len(), 1);
    assert_eq!(
        fitflow_scheduling::notify::sweep_reminders(&system, Utc::now(), lead)
            .await
            .expect("sweep"),
        0
    );
    let recorded = notifications(&sandbox, &booked.id).await;
    assert_eq!(
        recorded
            .iter()
            .filter(|(_, kind, status, _, _)| kind == "reminder" && status == "sent")
            .count(),
        1,
        "{recorded:?}"
    );
    assert_eq!(
        sandbox.mail.received_by(&address).len(),
        2,
        "confirmation and reminder"
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn a_client_without_an_email_is_skipped_once_and_never_retried() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let zoe = client(&sandbox, &ana.2, "", Province::On).await;
    let individual = class_type(&sandbox, &ana.2, pb::ClassCategory::Individual, 1).await;
    let received_before = sandbox.mail.received().len();
    let booked = book_with(
        &sandbox,
        &ana.2,
        &individual.id,
        next_year(5, 3, 15),
        &zoe,
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect("book");
    fitflow_testkit::eventually("the notification is settled", MAIL_WAIT, async || {
        notifications(&sandbox, &booked.id)
            .await
            .iter()
            .all(|(_, _, status, _, _)| status != "pending")
    })
    .await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        notifications(&sandbox, &booked.id).await,
        [(zoe, "booked".into(), "skipped".into(), "no_email".into(), 0)],
        "skipped at the first attempt, for good"
    );
    assert_eq!(
        sandbox.mail.received().len(),
        received_before,
        "nothing mailed"
    );
    let events = notification_events(&sandbox, &ana, 2).await;
    assert!(
        events
            .iter()
            .any(|(_, changes)| changes.contains(&"outcome=no_email".to_owned())),
        "{events:?}"
    );
}

#[tokio::test]
async fn another_trainer_cannot_have_a_client_they_do_not_see_mailed() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let mallory = trainer(&sandbox, "Mallory").await;
    let address = email();
    let zoe = client(&sandbox, &ana.2, &address, Province::On).await;
    let theirs = class_type(&sandbox, &mallory.2, pb::ClassCategory::Individual, 1).await;
    let refused = book_with(
        &sandbox,
        &mallory.2,
        &theirs.id,
        next_year(6, 1, 15),
        &zoe,
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect_err("not their client");
    assert_eq!(refused.code(), Code::NotFound);
    assert_eq!(reason(&refused), "CLIENT_NOT_FOUND");
    // Nor into Ana's group class, which Mallory does not see.
    let group = class_type(&sandbox, &ana.2, pb::ClassCategory::Group, 5).await;
    let class = book_with(
        &sandbox,
        &ana.2,
        &group.id,
        next_year(6, 2, 15),
        "",
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect("Ana's class");
    let joined = scheduling(&sandbox)
        .join_class(bearer(
            pb::JoinClassRequest {
                appointment_id: class.id,
                client_id: zoe.clone(),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            &mallory.2,
        ))
        .await
        .expect_err("not their client or class");
    assert_eq!(joined.code(), Code::NotFound);
    tokio::time::sleep(QUIET).await;
    assert!(sandbox.mail.received_by(&address).is_empty());
    let admin = sandbox.db.admin_pool().await;
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM scheduling.appointment_notifications")
            .fetch_one(&admin)
            .await
            .expect("count");
    assert_eq!(recorded, 0);
    // Clients' contact reader stays closed to every other peer.
    for peer in ["gateway", "documentation", "tenancy"] {
        let contact = clients_pb::clients_service_client::ClientsServiceClient::new(
            sandbox.channel("clients", peer),
        )
        .get_contact(tonic::Request::new(clients_pb::GetContactRequest {
            client_id: zoe.clone(),
            purpose: clients_pb::AccessPurpose::Operations as i32,
        }))
        .await
        .expect_err("not a contact reader");
        assert_eq!(reason(&contact), "PEER_NOT_ALLOWED", "{peer}");
    }
}

#[tokio::test]
async fn a_purged_clients_reminder_and_cancellation_are_skipped_for_good_and_nothing_is_mailed() {
    use std::sync::Arc;
    // Clients keeps a deleted record for no time, so it may be purged at once.
    let registry = fitflow_platform::Registry::new(vec![
        Arc::new(fitflow_identity::IdentityService),
        Arc::new(fitflow_tenancy::TenancyService),
        Arc::new(fitflow_clients::ClientsService::with_retention(
            chrono::Duration::zero(),
        )),
        Arc::new(fitflow_scheduling::SchedulingService),
        Arc::new(fitflow_documentation::DocumentationService),
        Arc::new(fitflow_billing::BillingService),
        Arc::new(fitflow_audit::AuditService),
    ])
    .expect("registry");
    let sandbox = Sandbox::with_registry(registry).await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let address = email();
    let zoe = client(&sandbox, &ana.2, &address, Province::On).await;
    let individual = class_type(&sandbox, &ana.2, pb::ClassCategory::Individual, 1).await;
    let soon = chrono::DurationRound::duration_trunc(
        Utc::now() + chrono::Duration::hours(2),
        chrono::Duration::minutes(1),
    )
    .expect("a whole minute");
    let booked = book_with(
        &sandbox,
        &ana.2,
        &individual.id,
        soon,
        &zoe,
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect("book");
    assert_eq!(
        wait_for_mail(&sandbox, &address, "booking confirmed")
            .await
            .len(),
        1
    );

    // Zoé is deleted, then purged (her key destroyed, her contact gone).
    let mut clients = ClientsServiceClient::new(sandbox.channel(CLIENTS, "gateway"));
    clients
        .delete_client(bearer(
            clients_pb::DeleteClientRequest {
                client_id: zoe.clone(),
                etag: String::new(),
            },
            &ana.2,
        ))
        .await
        .expect("soft delete");
    let (_, operator) = sandbox.operator().await;
    ClientsServiceClient::new(sandbox.channel(CLIENTS, "operator"))
        .purge_client(bearer(
            clients_pb::PurgeClientRequest {
                client_id: zoe.clone(),
            },
            &operator.access_token,
        ))
        .await
        .expect("purge");

    // Her session enters its reminder window (as if booked two days ago)
    // and the sweep records the reminder.
    let admin = sandbox.db.admin_pool().await;
    sqlx::query(
        "UPDATE scheduling.appointments SET created_at = now() - interval '2 days' \
         WHERE id = $1::uuid",
    )
    .bind(&booked.id)
    .execute(&admin)
    .await
    .expect("backdate the booking");
    let system = fitflow_db::connect_system(&sandbox.db.system_url("scheduling"), "scheduling", 2)
        .await
        .expect("scheduling's system pool");
    let recorded = fitflow_scheduling::notify::sweep_reminders(
        &system,
        Utc::now(),
        fitflow_scheduling::notify::DEFAULT_REMINDER_LEAD,
    )
    .await
    .expect("sweep");
    assert_eq!(recorded, 1, "the reminder is due");
    let settled = |rows: &[(String, String, String, String, i32)], count: usize| {
        rows.len() == count && rows.iter().all(|(_, _, status, _, _)| status != "pending")
    };
    // Settled while the session is still scheduled, so only the purge can
    // explain a skip.
    fitflow_testkit::eventually("the reminder is settled", MAIL_WAIT, async || {
        settled(&notifications(&sandbox, &booked.id).await, 2)
    })
    .await;
    // Then Ana cancels the session: its cancellation is due too.
    scheduling(&sandbox)
        .cancel_appointment(bearer(
            pb::CancelAppointmentRequest {
                appointment_id: booked.id.clone(),
                reason: "the client left".into(),
                etag: booked.etag.clone(),
                ..Default::default()
            },
            &ana.2,
        ))
        .await
        .expect("cancel the purged client's session");

    fitflow_testkit::eventually("the cancellation is settled", MAIL_WAIT, async || {
        settled(&notifications(&sandbox, &booked.id).await, 3)
    })
    .await;
    // Watched a while longer: settled rows are never taken up again.
    tokio::time::sleep(QUIET).await;
    let rows = notifications(&sandbox, &booked.id).await;
    assert_eq!(
        rows,
        [
            (
                zoe.clone(),
                "booked".into(),
                "sent".into(),
                String::new(),
                0
            ),
            (
                zoe.clone(),
                "reminder".into(),
                "skipped".into(),
                "client_not_found".into(),
                0
            ),
            (
                zoe.clone(),
                "cancelled".into(),
                "skipped".into(),
                "client_not_found".into(),
                0
            ),
        ],
        "skipped at the first attempt, never retried"
    );
    assert_eq!(
        sandbox.mail.received_by(&address).len(),
        1,
        "only the confirmation sent before the purge"
    );
    let events = notification_events(&sandbox, &ana, 6).await;
    assert_eq!(
        events
            .iter()
            .filter(|(_, changes)| changes.contains(&"outcome=client_not_found".to_owned()))
            .count(),
        2,
        "{events:?}"
    );
}
