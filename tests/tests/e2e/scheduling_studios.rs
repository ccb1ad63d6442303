//! Sessions at a studio, end to end: a booking names its studio only under a
//! contract that covers the session's date in the studio's zone; the
//! studio's managers read its roster by name — and nothing else of the
//! trainer's clients — with every name accounted for; billing dates such a
//! session in the studio's zone. Attacked as another studio's owner, the
//! trainer, a wrong peer and no token.

use chrono::{DateTime, Datelike as _, Duration, NaiveDate, TimeZone as _, Utc};
use chrono_tz::America::Vancouver;
use fitflow_e2e::{Sandbox, bearer};
use fitflow_proto::clients as clients_pb;
use fitflow_proto::clients::clients_service_client::ClientsServiceClient;
use fitflow_proto::scheduling as pb;
use fitflow_proto::scheduling::scheduling_service_client::SchedulingServiceClient;
use fitflow_proto::tenancy as tenancy_pb;
use tonic::Code;

use crate::identity_support::{reason, violated_fields};
use crate::scheduling::{EVERYONE, SCHEDULING, at, class_type, client_of, join, scheduling};
use crate::scheduling_billing::{as_billing, complete};
use crate::tenancy::{date, member, studio_profile, tenancy, trainer};

/// A studio in Vancouver (three hours behind the trainer's Toronto),
/// created by the user whose token this is.
pub(crate) async fn vancouver_studio(
    sandbox: &Sandbox,
    token: &str,
    name: &str,
) -> tenancy_pb::Studio {
    let mut profile = studio_profile(name, "");
    profile.time_zone = "America/Vancouver".into();
    tenancy(sandbox, "gateway")
        .create_studio(bearer(
            tenancy_pb::CreateStudioRequest {
                studio: Some(profile),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .expect("create studio")
        .into_inner()
        .studio
        .expect("studio")
}

/// Today in Vancouver.
pub(crate) fn vancouver_today() -> NaiveDate {
    Utc::now().with_timezone(&Vancouver).date_naive()
}

/// `hour`:`minute` local time in Vancouver on `day`.
pub(crate) fn vancouver(day: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    Vancouver
        .from_local_datetime(&day.and_hms_opt(hour, minute, 0).unwrap())
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

/// The studio invites the trainer from today and the trainer accepts; the
/// contract ends on `last_day` when given.
pub(crate) async fn contract(
    sandbox: &Sandbox,
    owner_token: &str,
    trainer_token: &str,
    studio_id: &str,
    trainer_email: &str,
    last_day: Option<NaiveDate>,
) {
    let mut api = tenancy(sandbox, "gateway");
    let invited = api
        .create_contract(bearer(
            tenancy_pb::CreateContractRequest {
                studio_id: studio_id.into(),
                trainer: Some(tenancy_pb::create_contract_request::Trainer::TrainerEmail(
                    trainer_email.into(),
                )),
                role: tenancy_pb::ContractRole::Contractor as i32,
                start_date: date(vancouver_today()),
                rates: crate::tenancy::rates("50", None),
                request_id: String::new(),
            },
            owner_token,
        ))
        .await
        .expect("invite")
        .into_inner()
        .contract
        .expect("contract");
    let accepted = api
        .accept_contract(bearer(
            tenancy_pb::AcceptContractRequest {
                contract_id: invited.id.clone(),
                etag: String::new(),
            },
            trainer_token,
        ))
        .await
        .expect("accept")
        .into_inner()
        .contract
        .expect("contract");
    if let Some(last_day) = last_day {
        api.end_contract(bearer(
            tenancy_pb::EndContractRequest {
                contract_id: accepted.id,
                end_date: date(last_day),
                etag: String::new(),
            },
            owner_token,
        ))
        .await
        .expect("end");
    }
}

pub(crate) async fn book_at(
    sandbox: &Sandbox,
    token: &str,
    class_type_id: &str,
    start: DateTime<Utc>,
    client_id: &str,
    studio_id: &str,
) -> Result<pb::Appointment, tonic::Status> {
    scheduling(sandbox)
        .book_appointment(bearer(
            pb::BookAppointmentRequest {
                appointment: Some(pb::Appointment {
                    class_type_id: class_type_id.into(),
                    start_time: at(start),
                    client_id: client_id.into(),
                    studio_id: studio_id.into(),
                    ..Default::default()
                }),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().appointment.expect("appointment"))
}

/// A client as a roster shows them: first name, last name, status.
type Shown<'a> = (&'a str, &'a str, i32);

pub(crate) fn roster_request(studio_id: &str, from: DateTime<Utc>) -> pb::ListStudioRosterRequest {
    pb::ListStudioRosterRequest {
        studio_id: studio_id.into(),
        start_time: at(from),
        end_time: at(from + Duration::days(31)),
        ..Default::default()
    }
}

pub(crate) async fn roster(
    sandbox: &Sandbox,
    token: &str,
    request: pb::ListStudioRosterRequest,
) -> Result<pb::ListStudioRosterResponse, tonic::Status> {
    scheduling(sandbox)
        .list_studio_roster(bearer(request, token))
        .await
        .map(tonic::Response::into_inner)
}

/// A client named `first` `last` of the trainer whose token this is.
pub(crate) async fn named_client(
    sandbox: &Sandbox,
    token: &str,
    first: &str,
    last: &str,
) -> String {
    ClientsServiceClient::new(sandbox.channel("clients", "gateway"))
        .create_client(bearer(
            clients_pb::CreateClientRequest {
                client: Some(clients_pb::Client {
                    first_name: first.into(),
                    last_name: last.into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .expect("create client")
        .into_inner()
        .client
        .expect("client")
        .id
}

/// Roster views of `client_id` by `viewer_id` that reached the audit
/// service, waiting up to twenty seconds for `expected`.
async fn roster_views(sandbox: &Sandbox, client_id: &str, viewer_id: &str, expected: i64) -> i64 {
    let admin = sandbox.db.admin_pool().await;
    let mut count = 0;
    for _ in 0..200 {
        count = sqlx::query_scalar(
            "SELECT count(*) FROM audit.access_log WHERE source_service = 'clients' \
             AND resource_type = 'clients' AND resource_id = $1::uuid \
             AND action::text = 'read' AND purpose = 'operations' AND actor_user_id = $2::uuid",
        )
        .bind(client_id)
        .bind(viewer_id)
        .fetch_one(&admin)
        .await
        .expect("access log");
        if count >= expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    count
}

#[tokio::test]
async fn a_booking_at_a_studio_needs_a_contract_covering_its_date_in_the_studios_zone() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, trainer_email, trainer_token) = trainer(&sandbox, "Ana").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let studio = vancouver_studio(&sandbox, &owner_token, "Studio Kits").await;
    let session = class_type(&sandbox, &trainer_token, pb::ClassCategory::Individual, 1).await;
    let client = client_of(&sandbox, &trainer_token).await;
    let last_day = vancouver_today() + Duration::days(60);

    let before = book_at(
        &sandbox,
        &trainer_token,
        &session.id,
        vancouver(last_day - Duration::days(10), 9, 0),
        &client,
        &studio.id,
    )
    .await
    .expect_err("no contract yet");
    assert_eq!(before.code(), Code::FailedPrecondition);
    assert_eq!(reason(&before), "NO_STUDIO_CONTRACT");

    contract(
        &sandbox,
        &owner_token,
        &trainer_token,
        &studio.id,
        &trainer_email,
        Some(last_day),
    )
    .await;
    // 22:30 in Vancouver on the last day is the next day in Toronto and in
    // UTC: the studio's zone dates it, so the contract covers it.
    let late = book_at(
        &sandbox,
        &trainer_token,
        &session.id,
        vancouver(last_day, 22, 30),
        &client,
        &studio.id,
    )
    .await
    .expect("the contract's last day, in the studio's zone");
    assert_eq!(late.studio_id, studio.id);
    let after = book_at(
        &sandbox,
        &trainer_token,
        &session.id,
        vancouver(last_day + Duration::days(1), 9, 0),
        &client,
        &studio.id,
    )
    .await
    .expect_err("the day after the contract");
    assert_eq!(reason(&after), "NO_STUDIO_CONTRACT");
    assert!(
        after
            .message()
            .contains(&(last_day + Duration::days(1)).to_string()),
        "the refusal names the date: {}",
        after.message()
    );

    // A series that runs past the contract books nothing at all.
    let series = scheduling(&sandbox)
        .book_series(bearer(
            pb::BookSeriesRequest {
                appointment: Some(pb::Appointment {
                    class_type_id: session.id.clone(),
                    start_time: at(vancouver(last_day - Duration::days(14), 7, 0)),
                    client_id: client.clone(),
                    studio_id: studio.id.clone(),
                    ..Default::default()
                }),
                time_zone: "America/Vancouver".into(),
                rule: Some(pb::WeeklyRule {
                    // google.type.DayOfWeek counts from Monday = 1, as chrono does.
                    days: vec![
                        i32::try_from(
                            (last_day - Duration::days(14))
                                .weekday()
                                .number_from_monday(),
                        )
                        .unwrap(),
                    ],
                    interval_weeks: 1,
                    count: 4,
                    ..Default::default()
                }),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            &trainer_token,
        ))
        .await
        .expect_err("two of four occurrences fall after the contract");
    assert_eq!(reason(&series), "NO_STUDIO_CONTRACT");

    let unknown = book_at(
        &sandbox,
        &trainer_token,
        &session.id,
        vancouver(last_day - Duration::days(3), 9, 0),
        &client,
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect_err("no such studio");
    assert_eq!(unknown.code(), Code::NotFound);
    assert_eq!(reason(&unknown), "STUDIO_NOT_FOUND");
    let malformed = book_at(
        &sandbox,
        &trainer_token,
        &session.id,
        vancouver(last_day - Duration::days(3), 9, 0),
        &client,
        "studio\u{0}",
    )
    .await
    .expect_err("not a UUID");
    assert_eq!(violated_fields(&malformed), vec!["appointment.studio_id"]);

    // Billing dates the session in the studio's zone, and names the studio.
    complete(&sandbox, &trainer_token, &late.id, &[]).await;
    let toronto_last_day = vancouver(last_day, 22, 30)
        .with_timezone(&chrono_tz::America::Toronto)
        .date_naive();
    let items = as_billing(&sandbox)
        .list_billable_appointments(bearer(
            pb::ListBillableAppointmentsRequest {
                trainer_id: String::new(),
                start_date: crate::scheduling_billing::date(last_day),
                end_date: crate::scheduling_billing::date(toronto_last_day),
                page_size: 0,
                page_token: String::new(),
            },
            &trainer_token,
        ))
        .await
        .expect("billable")
        .into_inner()
        .items;
    let item = items
        .iter()
        .find(|item| item.appointment_id == late.id)
        .expect("the held session is billable");
    assert_eq!(item.studio_id, studio.id);
    assert_eq!(item.local_date, crate::scheduling_billing::date(last_day));
}

#[tokio::test]
async fn a_studios_managers_see_its_roster_by_name_and_nothing_of_the_trainers_other_clients() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (trainer_id, trainer_email, trainer_token) = trainer(&sandbox, "Ana").await;
    let (owner_id, owner_email, owner_token) = member(&sandbox, "Olivia").await;
    let (_, rival_email, rival_token) = member(&sandbox, "Rita").await;
    let studio = vancouver_studio(&sandbox, &owner_token, "Studio Kits").await;
    let rival_studio = vancouver_studio(&sandbox, &rival_token, "Studio Rival").await;
    contract(
        &sandbox,
        &owner_token,
        &trainer_token,
        &studio.id,
        &trainer_email,
        None,
    )
    .await;
    let individual = class_type(&sandbox, &trainer_token, pb::ClassCategory::Individual, 1).await;
    let group = class_type(&sandbox, &trainer_token, pb::ClassCategory::Group, 1).await;
    let zoe = named_client(&sandbox, &trainer_token, "Zoé", "Roy").await;
    let (liam, maya) = (
        named_client(&sandbox, &trainer_token, "Liam", "Côté").await,
        named_client(&sandbox, &trainer_token, "Maya", "Singh").await,
    );
    let hidden = named_client(&sandbox, &trainer_token, "Secret", "Elsewhere").await;
    let day = vancouver_today() + Duration::days(5);

    let session = book_at(
        &sandbox,
        &trainer_token,
        &individual.id,
        vancouver(day, 8, 0),
        &zoe,
        &studio.id,
    )
    .await
    .expect("a session at the studio");
    let class = book_at(
        &sandbox,
        &trainer_token,
        &group.id,
        vancouver(day, 10, 0),
        "",
        &studio.id,
    )
    .await
    .expect("a class at the studio");
    join(&sandbox, &trainer_token, &class.id, &liam)
        .await
        .expect("liam takes the place");
    join(&sandbox, &trainer_token, &class.id, &maya)
        .await
        .expect("maya waits");
    let elsewhere = book_at(
        &sandbox,
        &trainer_token,
        &individual.id,
        vancouver(day, 12, 0),
        &hidden,
        "",
    )
    .await
    .expect("a session at no studio");

    // The owner's token names the studio once refreshed after creating it.
    sandbox.structure_settled().await;
    let owner_token = sandbox.login(&owner_email).await.access_token;
    let rival_token = sandbox.login(&rival_email).await.access_token;
    let from = vancouver(day, 0, 0);
    let page = roster(&sandbox, &owner_token, roster_request(&studio.id, from))
        .await
        .expect("the owner reads the roster");
    let seen: Vec<(&str, Vec<Shown<'_>>)> = page
        .sessions
        .iter()
        .map(|session| {
            (
                session.appointment_id.as_str(),
                session
                    .clients
                    .iter()
                    .map(|client| {
                        (
                            client.first_name.as_str(),
                            client.last_name.as_str(),
                            client.status,
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    let confirmed = pb::ParticipantStatus::Confirmed as i32;
    let waitlisted = pb::ParticipantStatus::Waitlisted as i32;
    assert_eq!(
        seen,
        vec![
            (session.id.as_str(), vec![("Zoé", "Roy", confirmed)]),
            (
                class.id.as_str(),
                vec![("Liam", "Côté", confirmed), ("Maya", "Singh", waitlisted)]
            ),
        ]
    );
    assert_eq!(page.sessions[1].class_type_name, "Strength");
    assert_eq!(page.sessions[1].trainer_id, trainer_id);
    assert!(
        !format!("{page:?}").contains(&elsewhere.id) && !format!("{page:?}").contains(&hidden),
        "a session at no studio, and its client, stay invisible"
    );
    // Each name shown is accounted for, as a read by the owner.
    for client in [&zoe, &liam, &maya] {
        assert_eq!(roster_views(&sandbox, client, &owner_id, 1).await, 1);
    }
    assert_eq!(roster_views(&sandbox, &hidden, &owner_id, 0).await, 0);

    // Paging: one session a page, the token bound to the filter.
    let mut first = roster_request(&studio.id, from);
    first.page_size = 1;
    let one = roster(&sandbox, &owner_token, first.clone())
        .await
        .expect("page one");
    assert_eq!(one.sessions.len(), 1);
    let mut next = first.clone();
    next.page_token = one.next_page_token.clone();
    let two = roster(&sandbox, &owner_token, next)
        .await
        .expect("page two");
    assert_eq!(two.sessions[0].appointment_id, class.id);
    let mut forged = roster_request(&rival_studio.id, from);
    forged.page_token = one.next_page_token;
    let refused = roster(&sandbox, &owner_token, forged)
        .await
        .expect_err("a token of another filter");
    assert_eq!(refused.code(), Code::InvalidArgument);

    // Attackers: another studio's owner, the trainer who teaches there.
    for (token, who) in [
        (&rival_token, "another studio's owner"),
        (&trainer_token, "the trainer"),
    ] {
        let refused = roster(&sandbox, token, roster_request(&studio.id, from))
            .await
            .expect_err(who);
        assert_eq!(refused.code(), Code::PermissionDenied, "{who}");
        assert_eq!(reason(&refused), "STUDIO_NOT_MANAGED", "{who}");
    }
    let mut window = roster_request(&studio.id, from);
    window.end_time = at(from + Duration::days(32));
    let refused = roster(&sandbox, &owner_token, window)
        .await
        .expect_err("more than 31 days");
    assert_eq!(violated_fields(&refused), vec!["end_time"]);
    let anonymous = SchedulingServiceClient::new(sandbox.channel(SCHEDULING, "gateway"))
        .list_studio_roster(roster_request(&studio.id, from))
        .await
        .expect_err("no token");
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let wrong_peer = SchedulingServiceClient::new(sandbox.channel(SCHEDULING, "billing"))
        .list_studio_roster(bearer(roster_request(&studio.id, from), &owner_token))
        .await
        .expect_err("billing is no roster reader");
    assert_eq!(wrong_peer.code(), Code::PermissionDenied);
    // Clients' name list answers scheduling alone: the gateway cannot ask
    // it for names, even with the owner's token.
    let names = ClientsServiceClient::new(sandbox.channel("clients", "gateway"))
        .list_roster_names(bearer(
            clients_pb::ListRosterNamesRequest {
                studio_id: studio.id.clone(),
                client_ids: vec![hidden.clone()],
            },
            &owner_token,
        ))
        .await
        .expect_err("only scheduling asks for roster names");
    assert_eq!(names.code(), Code::PermissionDenied);
    assert_eq!(roster_views(&sandbox, &hidden, &owner_id, 0).await, 0);
}

pub(crate) async fn set_policy_of(
    sandbox: &Sandbox,
    token: &str,
    studio_id: &str,
    hours: i32,
    late_fee: &str,
    no_show_fee: &str,
) -> Result<pb::CancellationPolicy, tonic::Status> {
    scheduling(sandbox)
        .set_cancellation_policy(bearer(
            pb::SetCancellationPolicyRequest {
                policy: Some(pb::CancellationPolicy {
                    late_cancel_hours: hours,
                    late_cancel_fee: crate::scheduling::cad(late_fee),
                    no_show_fee: crate::scheduling::cad(no_show_fee),
                    studio_id: studio_id.into(),
                    ..Default::default()
                }),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().policy.expect("policy"))
}

pub(crate) async fn policy_of(
    sandbox: &Sandbox,
    token: &str,
    studio_id: &str,
) -> Result<pb::CancellationPolicy, tonic::Status> {
    scheduling(sandbox)
        .get_cancellation_policy(bearer(
            pb::GetCancellationPolicyRequest {
                trainer_id: String::new(),
                studio_id: studio_id.into(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().policy.expect("policy"))
}

#[tokio::test]
async fn a_studios_own_cancellation_policy_prices_its_sessions_in_place_of_the_trainers() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, trainer_email, trainer_token) = trainer(&sandbox, "Ana").await;
    let (_, owner_email, owner_token) = member(&sandbox, "Olivia").await;
    let studio = vancouver_studio(&sandbox, &owner_token, "Studio Kits").await;
    contract(
        &sandbox,
        &owner_token,
        &trainer_token,
        &studio.id,
        &trainer_email,
        None,
    )
    .await;
    sandbox.structure_settled().await;
    let owner_token = sandbox.login(&owner_email).await.access_token;

    // The trainer's own: 12 hours, $30 late, $45.50 missed.
    crate::scheduling_billing::set_policy(&sandbox, &trainer_token).await;
    let no_override = policy_of(&sandbox, &trainer_token, &studio.id)
        .await
        .expect_err("the studio set none yet");
    assert_eq!(no_override.code(), Code::NotFound);
    assert_eq!(reason(&no_override), "NO_STUDIO_POLICY");
    let refused = set_policy_of(&sandbox, &trainer_token, &studio.id, 1, "0", "0")
        .await
        .expect_err("a trainer teaching there does not manage the studio");
    assert_eq!(reason(&refused), "STUDIO_NOT_MANAGED");
    let set = set_policy_of(&sandbox, &owner_token, &studio.id, 48, "40", "60")
        .await
        .expect("the owner sets the studio's");
    assert_eq!(set.studio_id, studio.id);
    assert!(set.trainer_id.is_empty());
    let read = policy_of(&sandbox, &trainer_token, &studio.id)
        .await
        .expect("anyone reads it");
    assert_eq!(read.late_cancel_hours, 48);
    assert_eq!(read.late_cancel_fee, crate::scheduling::cad("40.00"));

    let session = class_type(&sandbox, &trainer_token, pb::ClassCategory::Individual, 1).await;
    let client = client_of(&sandbox, &trainer_token).await;
    // Thirty hours ahead: late under the studio's 48 hours, in time under
    // the trainer's 12.
    let soon = Utc::now() + Duration::hours(30);
    let soon = soon - Duration::seconds(soon.timestamp() % 3600);
    let at_studio = book_at(
        &sandbox,
        &trainer_token,
        &session.id,
        soon,
        &client,
        &studio.id,
    )
    .await
    .expect("at the studio");
    let elsewhere = book_at(
        &sandbox,
        &trainer_token,
        &session.id,
        soon + Duration::hours(2),
        &client,
        "",
    )
    .await
    .expect("at no studio");
    let cancelled =
        crate::scheduling_billing::cancel(&sandbox, &trainer_token, &at_studio.id).await;
    assert!(cancelled.late_cancel, "the studio's 48 hours apply");
    assert_eq!(cancelled.penalty_fee, crate::scheduling::cad("40.00"));
    let cancelled =
        crate::scheduling_billing::cancel(&sandbox, &trainer_token, &elsewhere.id).await;
    assert!(!cancelled.late_cancel, "the trainer's 12 hours apply");
    assert_eq!(cancelled.penalty_fee, None);

    let missed = book_at(
        &sandbox,
        &trainer_token,
        &session.id,
        soon + Duration::hours(4),
        &client,
        &studio.id,
    )
    .await
    .expect("at the studio again");
    let missed = scheduling(&sandbox)
        .mark_no_show(bearer(
            pb::MarkNoShowRequest {
                appointment_id: missed.id.clone(),
                etag: String::new(),
            },
            &trainer_token,
        ))
        .await
        .expect("no-show")
        .into_inner()
        .appointment
        .expect("appointment");
    assert_eq!(missed.penalty_fee, crate::scheduling::cad("60.00"));
}

async fn studio_sessions(
    sandbox: &Sandbox,
    peer: &str,
    token: &str,
    request: pb::ListStudioSessionsRequest,
) -> Result<pb::ListStudioSessionsResponse, tonic::Status> {
    SchedulingServiceClient::new(sandbox.channel(SCHEDULING, peer))
        .list_studio_sessions(bearer(request, token))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn billing_lists_the_sessions_held_at_studios_each_dated_in_its_studios_zone() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (trainer_id, trainer_email, trainer_token) = trainer(&sandbox, "Ana").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let (_, _, stranger_token) = trainer(&sandbox, "Sam").await;
    let studio = vancouver_studio(&sandbox, &owner_token, "Studio Kits").await;
    contract(
        &sandbox,
        &owner_token,
        &trainer_token,
        &studio.id,
        &trainer_email,
        None,
    )
    .await;
    let individual = class_type(&sandbox, &trainer_token, pb::ClassCategory::Individual, 1).await;
    let group = class_type(&sandbox, &trainer_token, pb::ClassCategory::Group, 5).await;
    let (zoe, liam, maya) = (
        client_of(&sandbox, &trainer_token).await,
        client_of(&sandbox, &trainer_token).await,
        client_of(&sandbox, &trainer_token).await,
    );
    let day = vancouver_today() + Duration::days(6);
    // 22:30 in Vancouver: the next day in UTC, the studio's date is `day`.
    let late = book_at(
        &sandbox,
        &trainer_token,
        &individual.id,
        vancouver(day, 22, 30),
        &zoe,
        &studio.id,
    )
    .await
    .expect("late session");
    complete(&sandbox, &trainer_token, &late.id, &[(&zoe, true)]).await;
    let class = book_at(
        &sandbox,
        &trainer_token,
        &group.id,
        vancouver(day, 9, 0),
        "",
        &studio.id,
    )
    .await
    .expect("class");
    join(&sandbox, &trainer_token, &class.id, &liam)
        .await
        .expect("liam");
    join(&sandbox, &trainer_token, &class.id, &maya)
        .await
        .expect("maya");
    complete(
        &sandbox,
        &trainer_token,
        &class.id,
        &[(&liam, true), (&maya, false)],
    )
    .await;
    let elsewhere = book_at(
        &sandbox,
        &trainer_token,
        &individual.id,
        vancouver(day, 12, 0),
        &zoe,
        "",
    )
    .await
    .expect("at no studio");
    complete(&sandbox, &trainer_token, &elsewhere.id, &[(&zoe, true)]).await;
    let cancelled = book_at(
        &sandbox,
        &trainer_token,
        &individual.id,
        vancouver(day, 15, 0),
        &zoe,
        &studio.id,
    )
    .await
    .expect("to cancel");
    crate::scheduling_billing::cancel(&sandbox, &trainer_token, &cancelled.id).await;

    let request = pb::ListStudioSessionsRequest {
        trainer_id: trainer_id.clone(),
        start_date: date(day),
        end_date: date(day),
        ..Default::default()
    };
    let listed = studio_sessions(&sandbox, "billing", &trainer_token, request.clone())
        .await
        .expect("billing lists the sessions");
    let seen: Vec<(&str, i32, &str, i32)> = listed
        .sessions
        .iter()
        .map(|session| {
            (
                session.appointment_id.as_str(),
                session.category,
                session.time_zone.as_str(),
                session.clients_present,
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                class.id.as_str(),
                pb::ClassCategory::Group as i32,
                "America/Vancouver",
                1
            ),
            (
                late.id.as_str(),
                pb::ClassCategory::Individual as i32,
                "America/Vancouver",
                1
            ),
        ],
        "held sessions at the studio only, the late one on the studio's date"
    );
    assert!(
        listed
            .sessions
            .iter()
            .all(|session| session.local_date == date(day) && session.studio_id == studio.id)
    );
    // The UTC date of the late session is outside the period.
    let mut next_day = request.clone();
    next_day.start_date = date(day + Duration::days(1));
    next_day.end_date = date(day + Duration::days(1));
    let none = studio_sessions(&sandbox, "billing", &trainer_token, next_day)
        .await
        .expect("the next day");
    assert!(none.sessions.is_empty());
    // Paging, and a filter on another studio.
    let mut paged = request.clone();
    paged.page_size = 1;
    let first = studio_sessions(&sandbox, "billing", &trainer_token, paged.clone())
        .await
        .expect("page one");
    assert_eq!(first.sessions.len(), 1);
    paged.page_token = first.next_page_token;
    let second = studio_sessions(&sandbox, "billing", &trainer_token, paged)
        .await
        .expect("page two");
    assert_eq!(second.sessions[0].appointment_id, late.id);
    let mut other = request.clone();
    other.studio_ids = vec![uuid::Uuid::new_v4().to_string()];
    assert!(
        studio_sessions(&sandbox, "billing", &trainer_token, other)
            .await
            .expect("another studio")
            .sessions
            .is_empty()
    );

    // Only billing asks, and only for a trainer the user acts for.
    let gateway = studio_sessions(&sandbox, "gateway", &trainer_token, request.clone())
        .await
        .expect_err("the gateway may not");
    assert_eq!(gateway.code(), Code::PermissionDenied);
    let stranger = studio_sessions(&sandbox, "billing", &stranger_token, request.clone())
        .await
        .expect_err("another trainer's token");
    assert_eq!(reason(&stranger), "TRAINER_NOT_FOUND");
    let mut hostile = request;
    hostile.studio_ids = vec!["\u{0}".into()];
    hostile.end_date = date(day + Duration::days(93));
    let refused = studio_sessions(&sandbox, "billing", &trainer_token, hostile)
        .await
        .expect_err("bad fields");
    assert_eq!(violated_fields(&refused), vec!["end_date", "studio_ids[0]"]);
}
