//! Scheduling's internal RPCs for billing end to end: the billable items of
//! a period (held sessions, late cancellations and no-shows that owe a fee)
//! read as the user billing forwards, and the payment status billing sets
//! acting for itself — idempotent, audited once, refused to every other peer.

use chrono::{Datelike as _, Duration, NaiveDate, Utc};
use fitflow_e2e::{AUDIT, Sandbox, bearer};
use fitflow_proto::audit::audit_service_client::AuditServiceClient;
use fitflow_proto::audit::{Action, EventFilter, ListEventsRequest};
use fitflow_proto::google::r#type::Date;
use fitflow_proto::scheduling as pb;
use fitflow_proto::scheduling::scheduling_service_client::SchedulingServiceClient;
use tonic::Code;
use tonic::transport::Channel;

use crate::identity_support::{reason, violated_fields};
use crate::scheduling::{
    EVERYONE, SCHEDULING, book, cad, class_type, client_of, from_now, join, scheduling,
};
use crate::tenancy::{answer, invite_to_team, trainer};

/// Scheduling as billing calls it (mTLS peer `billing`).
pub(crate) fn as_billing(sandbox: &Sandbox) -> SchedulingServiceClient<Channel> {
    SchedulingServiceClient::new(sandbox.channel(SCHEDULING, "billing"))
}

pub(crate) fn date(value: NaiveDate) -> Option<Date> {
    Some(Date {
        year: value.year(),
        month: i32::try_from(value.month()).unwrap(),
        day: i32::try_from(value.day()).unwrap(),
    })
}

/// Today in Toronto, the zone of the sandbox's trainer profiles.
pub(crate) fn toronto_today() -> NaiveDate {
    Utc::now()
        .with_timezone(&chrono_tz::America::Toronto)
        .date_naive()
}

/// The next four local days, from today.
pub(crate) fn next_days(trainer_id: &str) -> pb::ListBillableAppointmentsRequest {
    let today = toronto_today();
    pb::ListBillableAppointmentsRequest {
        trainer_id: trainer_id.into(),
        start_date: date(today),
        end_date: date(today + Duration::days(3)),
        page_size: 0,
        page_token: String::new(),
    }
}

/// Every billable item of `request`, page by page.
pub(crate) async fn all_items(
    sandbox: &Sandbox,
    token: &str,
    mut request: pb::ListBillableAppointmentsRequest,
) -> (Vec<pb::BillableItem>, usize) {
    let (mut items, mut pages) = (Vec::new(), 0);
    loop {
        let page = as_billing(sandbox)
            .list_billable_appointments(bearer(request.clone(), token))
            .await
            .expect("list billable appointments")
            .into_inner();
        assert_eq!(page.time_zone, "America/Toronto");
        items.extend(page.items);
        pages += 1;
        if page.next_page_token.is_empty() {
            return (items, pages);
        }
        request.page_token = page.next_page_token;
    }
}

pub(crate) async fn set_policy(sandbox: &Sandbox, token: &str) {
    scheduling(sandbox)
        .set_cancellation_policy(bearer(
            pb::SetCancellationPolicyRequest {
                policy: Some(pb::CancellationPolicy {
                    late_cancel_hours: 12,
                    late_cancel_fee: cad("30"),
                    no_show_fee: cad("45.50"),
                    ..Default::default()
                }),
            },
            token,
        ))
        .await
        .expect("set policy");
}

pub(crate) async fn complete(
    sandbox: &Sandbox,
    token: &str,
    appointment_id: &str,
    came: &[(&str, bool)],
) {
    scheduling(sandbox)
        .complete_appointment(bearer(
            pb::CompleteAppointmentRequest {
                appointment_id: appointment_id.into(),
                attendance: came
                    .iter()
                    .map(|(client_id, attended)| pb::Attendance {
                        client_id: (*client_id).into(),
                        attended: *attended,
                    })
                    .collect(),
                etag: String::new(),
            },
            token,
        ))
        .await
        .expect("complete");
}

pub(crate) async fn cancel(
    sandbox: &Sandbox,
    token: &str,
    appointment_id: &str,
) -> pb::Appointment {
    scheduling(sandbox)
        .cancel_appointment(bearer(
            pb::CancelAppointmentRequest {
                appointment_id: appointment_id.into(),
                reason: "sick".into(),
                etag: String::new(),
                ..Default::default()
            },
            token,
        ))
        .await
        .expect("cancel")
        .into_inner()
        .appointment
        .expect("appointment")
}

fn set_paid(
    appointment_id: &str,
    client_id: &str,
    status: pb::PaymentStatus,
) -> pb::SetPaymentStatusRequest {
    pb::SetPaymentStatusRequest {
        appointment_id: appointment_id.into(),
        client_id: client_id.into(),
        status: status as i32,
        request_id: uuid::Uuid::new_v4().to_string(),
    }
}

/// What an item says, in one comparable line.
fn line(item: &pb::BillableItem) -> (String, String, i32, String, i32) {
    (
        item.appointment_id.clone(),
        item.client_id.clone(),
        item.kind,
        item.amount
            .clone()
            .map(|money| money.amount)
            .unwrap_or_default(),
        item.category,
    )
}

#[tokio::test]
async fn billing_sees_held_sessions_and_unwaived_late_fees_but_no_waived_no_show_or_cancellation_in_time()
 {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    set_policy(&sandbox, &ana.2).await;
    let individual = class_type(&sandbox, &ana.2, pb::ClassCategory::Individual, 1).await;
    let group = class_type(&sandbox, &ana.2, pb::ClassCategory::Group, 10).await;
    let (zoe, leo, mia, noe) = (
        client_of(&sandbox, &ana.2).await,
        client_of(&sandbox, &ana.2).await,
        client_of(&sandbox, &ana.2).await,
        client_of(&sandbox, &ana.2).await,
    );

    // Held with Zoé present: her session at the class type's 85.
    let held = book(&sandbox, &ana.2, &individual.id, from_now(2), &zoe)
        .await
        .expect("book");
    complete(&sandbox, &ana.2, &held.id, &[(&zoe, true)]).await;
    // Cancelled four hours ahead, inside the 12-hour window: Léo owes 30.
    let late = book(&sandbox, &ana.2, &individual.id, from_now(4), &leo)
        .await
        .expect("book");
    assert!(cancel(&sandbox, &ana.2, &late.id).await.late_cancel);
    // A no-show whose fee the trainer waived: nothing owed.
    let missed = book(&sandbox, &ana.2, &individual.id, from_now(6), &mia)
        .await
        .expect("book");
    let mut api = scheduling(&sandbox);
    api.mark_no_show(bearer(
        pb::MarkNoShowRequest {
            appointment_id: missed.id.clone(),
            etag: String::new(),
        },
        &ana.2,
    ))
    .await
    .expect("no-show");
    api.waive_fee(bearer(
        pb::WaiveFeeRequest {
            appointment_id: missed.id.clone(),
            reason: "first time".into(),
        },
        &ana.2,
    ))
    .await
    .expect("waive");
    // Cancelled two days ahead: in time, nothing owed.
    let early = book(&sandbox, &ana.2, &individual.id, from_now(48), &noe)
        .await
        .expect("book");
    assert!(!cancel(&sandbox, &ana.2, &early.id).await.late_cancel);
    // A held class: Zoé came, Léo was recorded absent.
    let class = book(&sandbox, &ana.2, &group.id, from_now(8), "")
        .await
        .expect("book");
    join(&sandbox, &ana.2, &class.id, &zoe).await.expect("join");
    join(&sandbox, &ana.2, &class.id, &leo).await.expect("join");
    complete(&sandbox, &ana.2, &class.id, &[(&zoe, true), (&leo, false)]).await;
    // Still scheduled: nothing yet.
    book(&sandbox, &ana.2, &individual.id, from_now(10), &noe)
        .await
        .expect("book");

    let (items, pages) = all_items(&sandbox, &ana.2, next_days(&ana.0)).await;
    assert_eq!(pages, 1);
    let session = pb::BillableKind::Session as i32;
    assert_eq!(
        items.iter().map(line).collect::<Vec<_>>(),
        vec![
            (
                held.id.clone(),
                zoe.clone(),
                session,
                "85.00".into(),
                pb::ClassCategory::Individual as i32
            ),
            (
                late.id.clone(),
                leo.clone(),
                pb::BillableKind::LateCancel as i32,
                "30.00".into(),
                pb::ClassCategory::Individual as i32
            ),
            (
                class.id.clone(),
                zoe.clone(),
                session,
                "85.00".into(),
                pb::ClassCategory::Group as i32
            ),
        ]
    );
    let first = &items[0];
    assert_eq!(first.class_type_id, individual.id);
    assert_eq!(first.start_time, held.start_time);
    assert_eq!(first.payment_status, pb::PaymentStatus::Pending as i32);
    assert!(first.studio_id.is_empty());
    let start = first.start_time.as_ref().expect("start time");
    let local = chrono::DateTime::from_timestamp(start.seconds, 0)
        .expect("an instant")
        .with_timezone(&chrono_tz::America::Toronto)
        .date_naive();
    assert_eq!(first.local_date, date(local));
    assert_eq!(items[2].class_type_id, group.id);

    // One item a page: the same items, in the same order, on three pages.
    let (paged, pages) = all_items(
        &sandbox,
        &ana.2,
        pb::ListBillableAppointmentsRequest {
            page_size: 1,
            ..next_days(&ana.0)
        },
    )
    .await;
    assert_eq!(pages, 3);
    assert_eq!(
        paged.iter().map(line).collect::<Vec<_>>(),
        items.iter().map(line).collect::<Vec<_>>()
    );
    // A period of yesterday alone holds none of them.
    let yesterday = toronto_today() - Duration::days(1);
    let (none, _) = all_items(
        &sandbox,
        &ana.2,
        pb::ListBillableAppointmentsRequest {
            start_date: date(yesterday),
            end_date: date(yesterday),
            ..next_days(&ana.0)
        },
    )
    .await;
    assert!(none.is_empty(), "{none:?}");
}

#[tokio::test]
async fn only_billing_may_ask_and_only_for_the_trainer_or_a_supervisor_whose_token_it_forwards() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let lead = trainer(&sandbox, "Lena").await;
    let ana = trainer(&sandbox, "Ana").await;
    let sam = trainer(&sandbox, "Sam").await;
    let invitation = invite_to_team(&sandbox, &lead.2, &lead.0, &ana.1)
        .await
        .expect("invite");
    answer(&sandbox, &ana.2, &invitation.id, true)
        .await
        .expect("join");
    // The join makes the lead's tokens stale: log in once identity knows.
    sandbox.structure_settled().await;
    let lead_token = sandbox.login(&lead.1).await.access_token;
    let individual = class_type(&sandbox, &ana.2, pb::ClassCategory::Individual, 1).await;
    let zoe = client_of(&sandbox, &ana.2).await;
    let held = book(&sandbox, &ana.2, &individual.id, from_now(2), &zoe)
        .await
        .expect("book");
    complete(&sandbox, &ana.2, &held.id, &[(&zoe, true)]).await;

    // Her supervisor's token, through the billing peer: her items.
    let (supervised, _) = all_items(&sandbox, &lead_token, next_days(&ana.0)).await;
    assert_eq!(
        supervised
            .iter()
            .map(|item| (item.appointment_id.clone(), item.client_id.clone()))
            .collect::<Vec<_>>(),
        vec![(held.id.clone(), zoe.clone())]
    );
    // Another trainer's token, through the billing peer: Ana does not exist.
    let stranger = as_billing(&sandbox)
        .list_billable_appointments(bearer(next_days(&ana.0), &sam.2))
        .await
        .expect_err("another trainer's items");
    assert_eq!(stranger.code(), Code::NotFound);
    assert_eq!(reason(&stranger), "TRAINER_NOT_FOUND");
    // Sam's own period holds nothing of Ana's.
    let (own, _) = all_items(&sandbox, &sam.2, next_days("")).await;
    assert!(own.is_empty(), "{own:?}");
    // Without the user's token, billing is refused.
    let anonymous = as_billing(&sandbox)
        .list_billable_appointments(next_days(&ana.0))
        .await
        .expect_err("no user token");
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    assert_eq!(reason(&anonymous), "TOKEN_REQUIRED");
    // A period of 94 dates, or one that ends before it starts.
    let today = toronto_today();
    for end in [today + Duration::days(93), today - Duration::days(1)] {
        let refused = as_billing(&sandbox)
            .list_billable_appointments(bearer(
                pb::ListBillableAppointmentsRequest {
                    end_date: date(end),
                    ..next_days(&ana.0)
                },
                &ana.2,
            ))
            .await
            .expect_err("a bad period");
        assert_eq!(violated_fields(&refused), vec!["end_date"]);
    }

    // The gateway and operators, even with the trainer's own token, and
    // documentation: refused at the peer.
    for peer in ["gateway", "operator", "documentation", "clients"] {
        let mut api = SchedulingServiceClient::new(sandbox.channel(SCHEDULING, peer));
        let listed = api
            .list_billable_appointments(bearer(next_days(&ana.0), &ana.2))
            .await
            .expect_err("not billing");
        assert_eq!(listed.code(), Code::PermissionDenied, "{peer}");
        assert_eq!(reason(&listed), "PEER_NOT_ALLOWED");
        let paid = api
            .set_payment_status(bearer(
                set_paid(&held.id, &zoe, pb::PaymentStatus::Paid),
                &ana.2,
            ))
            .await
            .expect_err("not billing");
        assert_eq!(paid.code(), Code::PermissionDenied, "{peer}");
        assert_eq!(reason(&paid), "PEER_NOT_ALLOWED");
    }
    let (items, _) = all_items(&sandbox, &ana.2, next_days(&ana.0)).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].payment_status, pb::PaymentStatus::Pending as i32);
}

#[tokio::test]
async fn a_payment_status_set_again_answers_the_same_and_is_audited_once() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let individual = class_type(&sandbox, &ana.2, pb::ClassCategory::Individual, 1).await;
    let group = class_type(&sandbox, &ana.2, pb::ClassCategory::Group, 10).await;
    let (zoe, leo) = (
        client_of(&sandbox, &ana.2).await,
        client_of(&sandbox, &ana.2).await,
    );
    let held = book(&sandbox, &ana.2, &individual.id, from_now(2), &zoe)
        .await
        .expect("book");
    complete(&sandbox, &ana.2, &held.id, &[(&zoe, true)]).await;
    let class = book(&sandbox, &ana.2, &group.id, from_now(4), "")
        .await
        .expect("book");
    join(&sandbox, &ana.2, &class.id, &leo).await.expect("join");
    complete(&sandbox, &ana.2, &class.id, &[(&leo, true)]).await;

    // Billing acts for itself: no user token.
    let mut billing = as_billing(&sandbox);
    let paid = set_paid(&held.id, &zoe, pb::PaymentStatus::Paid);
    for _ in 0..2 {
        let answer = billing
            .set_payment_status(paid.clone())
            .await
            .expect("set paid")
            .into_inner();
        assert_eq!(answer.status, pb::PaymentStatus::Paid as i32);
        assert_eq!(
            (answer.appointment_id, answer.client_id),
            (held.id.clone(), zoe.clone())
        );
    }
    // Another request for the status it has: succeeds, changes nothing.
    let again = billing
        .set_payment_status(set_paid(&held.id, &zoe, pb::PaymentStatus::Paid))
        .await
        .expect("paid again")
        .into_inner();
    assert_eq!(again.status, pb::PaymentStatus::Paid as i32);
    // The same request id for another request is refused.
    let reused = billing
        .set_payment_status(pb::SetPaymentStatusRequest {
            status: pb::PaymentStatus::Refunded as i32,
            ..paid.clone()
        })
        .await
        .expect_err("a reused request id");
    assert_eq!(reused.code(), Code::AlreadyExists);
    assert_eq!(reason(&reused), "REQUEST_ID_REUSED");
    // A group class's participant is paid on their own row.
    billing
        .set_payment_status(set_paid(&class.id, &leo, pb::PaymentStatus::Paid))
        .await
        .expect("participant paid");
    let (items, _) = all_items(&sandbox, &ana.2, next_days(&ana.0)).await;
    assert_eq!(
        items
            .iter()
            .map(|item| item.payment_status)
            .collect::<Vec<_>>(),
        vec![
            pb::PaymentStatus::Paid as i32,
            pb::PaymentStatus::Paid as i32
        ]
    );

    // Unknown ids, and a client who was not at the appointment.
    let nobody = uuid::Uuid::new_v4().to_string();
    let unknown = billing
        .set_payment_status(set_paid(&nobody, &zoe, pb::PaymentStatus::Paid))
        .await
        .expect_err("no such appointment");
    assert_eq!(unknown.code(), Code::NotFound);
    assert_eq!(reason(&unknown), "APPOINTMENT_NOT_FOUND");
    for (appointment_id, client_id) in [(&held.id, &leo), (&class.id, &zoe), (&held.id, &nobody)] {
        let absent = billing
            .set_payment_status(set_paid(appointment_id, client_id, pb::PaymentStatus::Paid))
            .await
            .expect_err("not a client of it");
        assert_eq!(absent.code(), Code::NotFound);
        assert_eq!(reason(&absent), "PARTICIPANT_NOT_FOUND");
    }
    let unspecified = billing
        .set_payment_status(pb::SetPaymentStatusRequest {
            status: 0,
            request_id: String::new(),
            ..paid.clone()
        })
        .await
        .expect_err("no status, no request id");
    assert_eq!(violated_fields(&unspecified), vec!["request_id", "status"]);

    // A later change is audited after the first; the repeats left no event
    // before it (the outbox delivers in order).
    billing
        .set_payment_status(set_paid(&held.id, &zoe, pb::PaymentStatus::Refunded))
        .await
        .expect("refunded");
    let mut changes = payment_changes(&sandbox, &ana, &held.id).await;
    changes.sort();
    assert_eq!(
        changes,
        [
            ("paid".to_owned(), "refunded".to_owned()),
            ("pending".to_owned(), "paid".to_owned())
        ]
    );
}

/// Waits (up to 20 s) until the audit trail holds the refund of a payment
/// at `appointment_id`; every payment status change audited there, as
/// (old, new).
async fn payment_changes(
    sandbox: &Sandbox,
    (trainer_id, _, token): &(String, String, String),
    appointment_id: &str,
) -> Vec<(String, String)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let events = AuditServiceClient::new(sandbox.channel(AUDIT, "gateway"))
            .list_events(bearer(
                ListEventsRequest {
                    filter: Some(EventFilter {
                        tenant_id: trainer_id.clone(),
                        resource_type: "appointment_participants".into(),
                        resource_id: appointment_id.into(),
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
            .events;
        let changes: Vec<(String, String)> = events
            .iter()
            .filter_map(|stored| stored.event.as_ref())
            .inspect(|event| assert_eq!(event.action, Action::Update as i32))
            .flat_map(|event| event.changes.iter())
            .filter(|change| change.field == "payment_status")
            .map(|change| (change.old_value.clone(), change.new_value.clone()))
            .collect();
        if changes.iter().any(|(_, new)| new == "refunded") || std::time::Instant::now() > deadline
        {
            return changes;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
