//! Availability at a studio, end to end: a rule naming a studio is the
//! studio's wall time, in its zone from tenancy, so a Toronto trainer's
//! 09:00 rule at a Vancouver studio offers 09:00 Vancouver (12:00 Toronto),
//! and rules overlap as real instants whatever their zones — across a
//! daylight-saving change that a studio's zone does not make (Regina). A
//! rule needs a live studio; another trainer reaches nothing. Also: a
//! retried booking answers its first appointment though its contract ended
//! (or its client's share was revoked) since, and a studio deleted a second
//! ago takes no booking.

use chrono::{DateTime, Datelike as _, Duration, NaiveDate, TimeZone as _, Utc, Weekday};
use chrono_tz::Tz;
use fitflow_e2e::{Sandbox, bearer};
use fitflow_proto::clients as clients_pb;
use fitflow_proto::clients::clients_service_client::ClientsServiceClient;
use fitflow_proto::google::r#type::DayOfWeek;
use fitflow_proto::scheduling as pb;
use fitflow_proto::tenancy as tenancy_pb;
use tonic::Code;

use crate::identity_support::reason;
use crate::scheduling::{EVERYONE, at, class_type, client_of, scheduling};
use crate::scheduling_slots::{create_rule, rule};
use crate::scheduling_studios::{vancouver_studio, vancouver_today};
use crate::tenancy::{date, member, studio_profile, tenancy, trainer};

/// A studio in `zone`, created by the user whose token this is.
async fn studio_in(sandbox: &Sandbox, token: &str, name: &str, zone: &str) -> tenancy_pb::Studio {
    let mut profile = studio_profile(name, "");
    profile.time_zone = zone.into();
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

/// The first `weekday` on or after `month`/`day` next year.
fn next_year(month: u32, day: u32, weekday: Weekday) -> NaiveDate {
    let first = NaiveDate::from_ymd_opt(Utc::now().year() + 1, month, day).unwrap();
    (0..7)
        .map(|offset| first + Duration::days(offset))
        .find(|day| day.weekday() == weekday)
        .unwrap()
}

/// `hour`:`minute` wall time in `zone` on `day`.
fn wall(zone: Tz, day: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    zone.from_local_datetime(&day.and_hms_opt(hour, minute, 0).unwrap())
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

/// `rule` at `studio_id`.
fn at_studio(mut rule: pb::AvailabilityRule, studio_id: &str) -> pb::AvailabilityRule {
    rule.studio_id = studio_id.into();
    rule
}

async fn free_slots(
    sandbox: &Sandbox,
    token: &str,
    class_type_id: &str,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
) -> Result<pb::ListFreeSlotsResponse, tonic::Status> {
    scheduling(sandbox)
        .list_free_slots(bearer(
            pb::ListFreeSlotsRequest {
                class_type_id: class_type_id.into(),
                start_time: at(from),
                end_time: at(to),
                ..Default::default()
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// Each slot as "HH:MM zone studio-or-own @ UTC HH:MM".
fn shown(response: &pb::ListFreeSlotsResponse, studio_id: &str) -> Vec<String> {
    response
        .slots
        .iter()
        .map(|slot| {
            let clock = slot.local_time.as_ref().expect("local time");
            let start = slot.start_time.as_ref().expect("start");
            let utc = DateTime::from_timestamp(start.seconds, 0).unwrap();
            let place = if slot.studio_id.is_empty() {
                "own"
            } else {
                assert_eq!(slot.studio_id, studio_id);
                "studio"
            };
            format!(
                "{:02}:{:02} {} {place} @ {}",
                clock.hours,
                clock.minutes,
                slot.time_zone,
                utc.format("%m-%d %H:%M")
            )
        })
        .collect()
}

#[tokio::test]
async fn a_rule_at_a_vancouver_studio_offers_nine_oclock_vancouver_to_a_toronto_trainer() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, trainer_token) = trainer(&sandbox, "Ana").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let studio = vancouver_studio(&sandbox, &owner_token, "Studio Kits").await;
    let session = class_type(&sandbox, &trainer_token, pb::ClassCategory::Individual, 1).await;
    // A Monday in July: Vancouver is PDT (UTC-7), Toronto EDT (UTC-4).
    let monday = next_year(7, 1, Weekday::Mon);

    let at_kits = create_rule(
        &sandbox,
        &trainer_token,
        at_studio(
            rule(DayOfWeek::Monday, (9, 0), (12, 0), monday, None),
            &studio.id,
        ),
    )
    .await
    .expect("hours at the studio, no contract needed");
    assert_eq!(at_kits.studio_id, studio.id);
    // 08:00-09:00 Toronto is 05:00-06:00 Vancouver: no overlap.
    create_rule(
        &sandbox,
        &trainer_token,
        rule(DayOfWeek::Monday, (8, 0), (9, 0), monday, None),
    )
    .await
    .expect("the trainer's own early hour");

    let toronto = chrono_tz::America::Toronto;
    let day = (
        wall(toronto, monday, 0, 0),
        wall(toronto, monday + Duration::days(1), 0, 0),
    );
    let slots = free_slots(&sandbox, &trainer_token, &session.id, day)
        .await
        .expect("free slots");
    assert_eq!(slots.time_zone, "America/Toronto");
    let utc_day = monday.format("%m-%d");
    assert_eq!(
        shown(&slots, &studio.id),
        [
            format!("08:00 America/Toronto own @ {utc_day} 12:00"),
            format!("09:00 America/Vancouver studio @ {utc_day} 16:00"),
            format!("09:15 America/Vancouver studio @ {utc_day} 16:15"),
            format!("09:30 America/Vancouver studio @ {utc_day} 16:30"),
            format!("09:45 America/Vancouver studio @ {utc_day} 16:45"),
            format!("10:00 America/Vancouver studio @ {utc_day} 17:00"),
            format!("10:15 America/Vancouver studio @ {utc_day} 17:15"),
            format!("10:30 America/Vancouver studio @ {utc_day} 17:30"),
            format!("10:45 America/Vancouver studio @ {utc_day} 17:45"),
            format!("11:00 America/Vancouver studio @ {utc_day} 18:00"),
        ],
        "09:00 in Vancouver is 12:00 in Toronto; the two places never join"
    );
    assert_eq!(
        slots.slots[1].start_time,
        at(wall(toronto, monday, 12, 0)),
        "09:00 Vancouver = 12:00 Toronto"
    );

    // Time off is the trainer's wall time, removed at every place: noon to
    // 13:00 Toronto is 09:00-10:00 at the studio.
    crate::scheduling_slots::create_exception(
        &sandbox,
        &trainer_token,
        pb::AvailabilityException {
            kind: pb::AvailabilityExceptionKind::TimeOff as i32,
            start_date: date(monday),
            start_time: crate::scheduling_slots::time(12, 0),
            end_time: crate::scheduling_slots::time(13, 0),
            ..Default::default()
        },
    )
    .await;
    let slots = free_slots(&sandbox, &trainer_token, &session.id, day)
        .await
        .expect("free slots");
    assert_eq!(
        shown(&slots, &studio.id),
        [
            format!("08:00 America/Toronto own @ {utc_day} 12:00"),
            format!("10:00 America/Vancouver studio @ {utc_day} 17:00"),
            format!("10:15 America/Vancouver studio @ {utc_day} 17:15"),
            format!("10:30 America/Vancouver studio @ {utc_day} 17:30"),
            format!("10:45 America/Vancouver studio @ {utc_day} 17:45"),
            format!("11:00 America/Vancouver studio @ {utc_day} 18:00"),
        ]
    );
}

#[tokio::test]
async fn rules_in_different_zones_overlap_as_instants_and_across_a_dst_change_only_one_zone_makes()
{
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, trainer_token) = trainer(&sandbox, "Ana").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let kits = vancouver_studio(&sandbox, &owner_token, "Studio Kits").await;
    let regina = studio_in(&sandbox, &owner_token, "Studio Wascana", "America/Regina").await;
    let monday = next_year(7, 1, Weekday::Mon);

    // 12:00-13:00 Toronto and 09:00-10:00 Vancouver are the same hour.
    let noon = create_rule(
        &sandbox,
        &trainer_token,
        rule(DayOfWeek::Monday, (12, 0), (13, 0), monday, None),
    )
    .await
    .expect("the trainer's noon");
    let refused = create_rule(
        &sandbox,
        &trainer_token,
        at_studio(
            rule(DayOfWeek::Monday, (9, 0), (10, 0), monday, None),
            &kits.id,
        ),
    )
    .await
    .expect_err("09:00 Vancouver is noon in Toronto");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&refused), "AVAILABILITY_RULE_OVERLAP");
    assert!(
        refused.message().contains(&noon.id),
        "the refusal names the rule: {}",
        refused.message()
    );
    // The same wall time three hours apart is no overlap (the database once
    // compared wall times across studios and refused it).
    create_rule(
        &sandbox,
        &trainer_token,
        at_studio(
            rule(DayOfWeek::Monday, (12, 0), (13, 0), monday, None),
            &kits.id,
        ),
    )
    .await
    .expect("12:00 Vancouver is 15:00 in Toronto");

    // Regina keeps UTC-6 all year; Toronto moves from UTC-5 to UTC-4 on the
    // second Sunday of March. 10:00-11:00 Regina on a Wednesday is
    // 11:00-12:00 in Toronto in winter, 12:00-13:00 in summer.
    let january = NaiveDate::from_ymd_opt(monday.year(), 1, 1).unwrap();
    let wednesday_noon = create_rule(
        &sandbox,
        &trainer_token,
        rule(
            DayOfWeek::Wednesday,
            (12, 0),
            (13, 0),
            january,
            NaiveDate::from_ymd_opt(monday.year(), 12, 31),
        ),
    )
    .await
    .expect("Wednesdays at noon in Toronto");
    create_rule(
        &sandbox,
        &trainer_token,
        at_studio(
            rule(
                DayOfWeek::Wednesday,
                (10, 0),
                (11, 0),
                january,
                NaiveDate::from_ymd_opt(monday.year(), 3, 7),
            ),
            &regina.id,
        ),
    )
    .await
    .expect("winter: 11:00-12:00 Toronto only touches noon");
    let summer = create_rule(
        &sandbox,
        &trainer_token,
        at_studio(
            rule(
                DayOfWeek::Wednesday,
                (10, 0),
                (11, 0),
                NaiveDate::from_ymd_opt(monday.year(), 3, 8).unwrap(),
                NaiveDate::from_ymd_opt(monday.year(), 4, 30),
            ),
            &regina.id,
        ),
    )
    .await
    .expect_err("from the March change, 10:00 Regina is noon in Toronto");
    assert_eq!(reason(&summer), "AVAILABILITY_RULE_OVERLAP");
    assert!(
        summer.message().contains(&wednesday_noon.id),
        "{}",
        summer.message()
    );

    // Thursdays 09:00 at Regina stay 09:00 Regina (15:00 UTC) across the
    // change, which is 10:00 then 11:00 in Toronto.
    create_rule(
        &sandbox,
        &trainer_token,
        at_studio(
            rule(DayOfWeek::Thursday, (9, 0), (10, 0), january, None),
            &regina.id,
        ),
    )
    .await
    .expect("Thursdays at Regina");
    let session = class_type(&sandbox, &trainer_token, pb::ClassCategory::Individual, 1).await;
    let change = next_year(3, 8, Weekday::Sun);
    let before = change - Duration::days(3);
    let after = change + Duration::days(4);
    let range = (
        wall(chrono_tz::UTC, before, 0, 0),
        wall(chrono_tz::UTC, after + Duration::days(1), 0, 0),
    );
    let slots = free_slots(&sandbox, &trainer_token, &session.id, range)
        .await
        .expect("free slots");
    // (Wednesday's noon in Toronto is in the range too.)
    let starts: Vec<_> = slots
        .slots
        .iter()
        .filter(|slot| slot.studio_id == regina.id)
        .map(|slot| (slot.start_time, slot.time_zone.clone()))
        .collect();
    assert_eq!(
        starts,
        [
            (
                at(wall(chrono_tz::UTC, before, 15, 0)),
                "America/Regina".to_owned()
            ),
            (
                at(wall(chrono_tz::UTC, after, 15, 0)),
                "America/Regina".to_owned()
            ),
        ],
        "09:00 Regina on both sides of Toronto's change"
    );
    assert_eq!(
        wall(chrono_tz::UTC, before, 15, 0)
            .with_timezone(&chrono_tz::America::Toronto)
            .format("%H:%M")
            .to_string(),
        "10:00"
    );
    assert_eq!(
        wall(chrono_tz::UTC, after, 15, 0)
            .with_timezone(&chrono_tz::America::Toronto)
            .format("%H:%M")
            .to_string(),
        "11:00"
    );
}

#[tokio::test]
async fn a_rule_needs_a_live_studio_and_another_trainer_reaches_nothing() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (ana_id, _, ana_token) = trainer(&sandbox, "Ana").await;
    let (_, _, bo_token) = trainer(&sandbox, "Bo").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let studio = vancouver_studio(&sandbox, &owner_token, "Studio Kits").await;
    let monday = next_year(7, 1, Weekday::Mon);
    let hours = rule(DayOfWeek::Monday, (9, 0), (12, 0), monday, None);

    let unknown = create_rule(
        &sandbox,
        &ana_token,
        at_studio(hours.clone(), &uuid::Uuid::new_v4().to_string()),
    )
    .await
    .expect_err("no such studio");
    assert_eq!(unknown.code(), Code::NotFound);
    assert_eq!(reason(&unknown), "STUDIO_NOT_FOUND");

    let gone = studio_in(&sandbox, &owner_token, "Studio Gone", "America/Vancouver").await;
    // Ana's rule there, then the studio is deleted: its hours are nowhere.
    create_rule(
        &sandbox,
        &ana_token,
        at_studio(
            rule(DayOfWeek::Tuesday, (9, 0), (12, 0), monday, None),
            &gone.id,
        ),
    )
    .await
    .expect("a rule at a live studio");
    tenancy(&sandbox, "gateway")
        .delete_studio(bearer(
            tenancy_pb::DeleteStudioRequest {
                studio_id: gone.id.clone(),
                etag: String::new(),
            },
            &owner_token,
        ))
        .await
        .expect("delete studio");
    let deleted = create_rule(&sandbox, &ana_token, at_studio(hours.clone(), &gone.id))
        .await
        .expect_err("a deleted studio, asked afresh");
    assert_eq!(reason(&deleted), "STUDIO_NOT_FOUND");

    let mine = create_rule(&sandbox, &ana_token, at_studio(hours.clone(), &studio.id))
        .await
        .expect("Ana's hours at the studio");
    let session = class_type(&sandbox, &ana_token, pb::ClassCategory::Individual, 1).await;
    let toronto = chrono_tz::America::Toronto;
    let week = (
        wall(toronto, monday, 0, 0),
        wall(toronto, monday + Duration::days(2), 0, 0),
    );
    let slots = free_slots(&sandbox, &ana_token, &session.id, week)
        .await
        .expect("free slots");
    assert!(!slots.slots.is_empty());
    assert!(
        slots.slots.iter().all(|slot| slot.studio_id == studio.id),
        "nothing at the deleted studio"
    );

    // Bo: no rule for Ana, no slots of Ana's class type, no delete.
    let mut for_ana = at_studio(hours.clone(), &studio.id);
    for_ana.trainer_id = ana_id.clone();
    for_ana.start_time = crate::scheduling_slots::time(13, 0);
    for_ana.end_time = crate::scheduling_slots::time(14, 0);
    let refused = create_rule(&sandbox, &bo_token, for_ana)
        .await
        .expect_err("Bo does not act for Ana");
    assert_eq!(refused.code(), Code::NotFound);
    assert_eq!(reason(&refused), "TRAINER_NOT_FOUND");
    let peeked = free_slots(&sandbox, &bo_token, &session.id, week)
        .await
        .expect_err("Ana's class type, Bo's token");
    assert_eq!(peeked.code(), Code::NotFound);
    let deleted = scheduling(&sandbox)
        .delete_availability_rule(bearer(
            pb::DeleteAvailabilityRuleRequest {
                rule_id: mine.id.clone(),
                etag: mine.etag.clone(),
            },
            &bo_token,
        ))
        .await
        .expect_err("Ana's rule, Bo's token");
    assert_eq!(reason(&deleted), "AVAILABILITY_RULE_NOT_FOUND");
    // Bo's own hours at the same studio and time are his business.
    create_rule(&sandbox, &bo_token, at_studio(hours, &studio.id))
        .await
        .expect("Bo's hours at the same studio");
}

/// The studio invites the trainer from today and the trainer accepts; the
/// contract's id.
async fn open_contract(
    sandbox: &Sandbox,
    owner_token: &str,
    trainer_token: &str,
    studio_id: &str,
    trainer_email: &str,
) -> String {
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
    api.accept_contract(bearer(
        tenancy_pb::AcceptContractRequest {
            contract_id: invited.id.clone(),
            etag: String::new(),
        },
        trainer_token,
    ))
    .await
    .expect("accept");
    invited.id
}

async fn book_with(
    sandbox: &Sandbox,
    token: &str,
    appointment: pb::Appointment,
    request_id: &str,
) -> Result<pb::Appointment, tonic::Status> {
    scheduling(sandbox)
        .book_appointment(bearer(
            pb::BookAppointmentRequest {
                appointment: Some(appointment),
                request_id: request_id.into(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().appointment.expect("appointment"))
}

#[tokio::test]
async fn a_retried_booking_answers_its_first_appointment_after_its_contract_ended_or_share_was_revoked()
 {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (ana_id, trainer_email, trainer_token) = trainer(&sandbox, "Ana").await;
    let (_, _, bo_token) = trainer(&sandbox, "Bo").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let studio = vancouver_studio(&sandbox, &owner_token, "Studio Kits").await;
    let session = class_type(&sandbox, &trainer_token, pb::ClassCategory::Individual, 1).await;
    let client = client_of(&sandbox, &trainer_token).await;
    let contract_id = open_contract(
        &sandbox,
        &owner_token,
        &trainer_token,
        &studio.id,
        &trainer_email,
    )
    .await;
    let vancouver = chrono_tz::America::Vancouver;
    let next_week = vancouver_today() + Duration::days(7);
    let at_kits = pb::Appointment {
        class_type_id: session.id.clone(),
        start_time: at(wall(vancouver, next_week, 9, 0)),
        client_id: client.clone(),
        studio_id: studio.id.clone(),
        ..Default::default()
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let first = book_with(&sandbox, &trainer_token, at_kits.clone(), &request_id)
        .await
        .expect("booked under the contract");

    tenancy(&sandbox, "gateway")
        .end_contract(bearer(
            tenancy_pb::EndContractRequest {
                contract_id,
                end_date: date(vancouver_today()),
                etag: String::new(),
            },
            &owner_token,
        ))
        .await
        .expect("end the contract today");
    let mut later = at_kits.clone();
    later.start_time = at(wall(vancouver, next_week, 11, 0));
    let fresh = book_with(
        &sandbox,
        &trainer_token,
        later,
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect_err("a new booking after the contract's end");
    assert_eq!(reason(&fresh), "NO_STUDIO_CONTRACT");
    let retried = book_with(&sandbox, &trainer_token, at_kits.clone(), &request_id)
        .await
        .expect("the retry answers the first booking");
    assert_eq!(retried.id, first.id);

    // Another caller's same request id is not a replay of Ana's.
    let bo_session = class_type(&sandbox, &bo_token, pb::ClassCategory::Individual, 1).await;
    let bo_client = client_of(&sandbox, &bo_token).await;
    let bos = book_with(
        &sandbox,
        &bo_token,
        pb::Appointment {
            class_type_id: bo_session.id.clone(),
            start_time: at(wall(vancouver, next_week, 9, 0)),
            client_id: bo_client.clone(),
            ..Default::default()
        },
        &request_id,
    )
    .await
    .expect("Bo's own booking");
    assert_ne!(bos.id, first.id);

    // Ana books Bo's client he shared with her; he revokes the share.
    let mut clients = ClientsServiceClient::new(sandbox.channel("clients", "gateway"));
    clients
        .share_client(bearer(
            clients_pb::ShareClientRequest {
                client_id: bo_client.clone(),
                trainer_id: ana_id.clone(),
                level: clients_pb::AccessLevel::Write as i32,
                trainer_email: String::new(),
            },
            &bo_token,
        ))
        .await
        .expect("share");
    let shared = pb::Appointment {
        class_type_id: session.id.clone(),
        start_time: at(wall(vancouver, next_week + Duration::days(1), 9, 0)),
        client_id: bo_client.clone(),
        ..Default::default()
    };
    let share_request = uuid::Uuid::new_v4().to_string();
    let with_share = book_with(&sandbox, &trainer_token, shared.clone(), &share_request)
        .await
        .expect("booked while shared");
    clients
        .revoke_client_share(bearer(
            clients_pb::RevokeClientShareRequest {
                client_id: bo_client.clone(),
                trainer_id: ana_id,
            },
            &bo_token,
        ))
        .await
        .expect("revoke");
    // Cached access answers end within seconds: wait until a new booking
    // is refused.
    let mut refused = None;
    for attempt in 0..50 {
        let mut other = shared.clone();
        other.start_time =
            at(wall(vancouver, next_week + Duration::days(2), 9, 0) + Duration::hours(attempt));
        match book_with(
            &sandbox,
            &trainer_token,
            other,
            &uuid::Uuid::new_v4().to_string(),
        )
        .await
        {
            Err(status) => {
                refused = Some(status);
                break;
            }
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
    let refused = refused.expect("the share's end reaches scheduling");
    assert_eq!(reason(&refused), "CLIENT_NOT_FOUND");
    let retried = book_with(&sandbox, &trainer_token, shared, &share_request)
        .await
        .expect("the retry answers the first booking");
    assert_eq!(retried.id, with_share.id);
}

#[tokio::test]
async fn a_studio_deleted_a_second_ago_takes_no_booking() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, trainer_token) = trainer(&sandbox, "Ana").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let studio = vancouver_studio(&sandbox, &owner_token, "Studio Kits").await;
    let session = class_type(&sandbox, &trainer_token, pb::ClassCategory::Individual, 1).await;
    let client = client_of(&sandbox, &trainer_token).await;
    let monday = next_year(7, 1, Weekday::Mon);
    // The studio's zone is now cached: by a rule there and a slot search.
    create_rule(
        &sandbox,
        &trainer_token,
        at_studio(
            rule(DayOfWeek::Monday, (9, 0), (12, 0), monday, None),
            &studio.id,
        ),
    )
    .await
    .expect("hours at the studio");
    let toronto = chrono_tz::America::Toronto;
    let day = (
        wall(toronto, monday, 0, 0),
        wall(toronto, monday + Duration::days(1), 0, 0),
    );
    let slots = free_slots(&sandbox, &trainer_token, &session.id, day)
        .await
        .expect("free slots");
    assert!(!slots.slots.is_empty());
    let booking = pb::Appointment {
        class_type_id: session.id.clone(),
        start_time: at(wall(chrono_tz::America::Vancouver, monday, 9, 0)),
        client_id: client.clone(),
        studio_id: studio.id.clone(),
        ..Default::default()
    };
    let uncontracted = book_with(
        &sandbox,
        &trainer_token,
        booking.clone(),
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect_err("no contract");
    assert_eq!(reason(&uncontracted), "NO_STUDIO_CONTRACT");

    tenancy(&sandbox, "gateway")
        .delete_studio(bearer(
            tenancy_pb::DeleteStudioRequest {
                studio_id: studio.id.clone(),
                etag: String::new(),
            },
            &owner_token,
        ))
        .await
        .expect("delete studio");
    let refused = book_with(
        &sandbox,
        &trainer_token,
        booking,
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect_err("deleted a moment ago");
    assert_eq!(refused.code(), Code::NotFound);
    assert_eq!(reason(&refused), "STUDIO_NOT_FOUND");
}

#[tokio::test]
async fn of_racing_creates_at_three_places_whose_hours_meet_one_is_made() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, trainer_token) = trainer(&sandbox, "Ana").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let kits = vancouver_studio(&sandbox, &owner_token, "Studio Kits").await;
    let regina = studio_in(&sandbox, &owner_token, "Studio Wascana", "America/Regina").await;
    let monday = next_year(7, 1, Weekday::Mon);
    // In July, 12:00 Toronto = 09:00 Vancouver = 10:00 Regina: different
    // places (the database's constraint sees none of them meet), one hour.
    let places = [
        (String::new(), (12, 0), (13, 0)),
        (kits.id.clone(), (9, 0), (10, 0)),
        (regina.id.clone(), (10, 0), (11, 0)),
    ];
    // Over one connection, so the race is between transactions.
    let shared = scheduling(&sandbox);
    let mut tasks = Vec::new();
    for round in 0..18 {
        let (studio_id, start, end) = places[round % places.len()].clone();
        let (mut api, token) = (shared.clone(), trainer_token.clone());
        tasks.push(tokio::spawn(async move {
            api.create_availability_rule(bearer(
                pb::CreateAvailabilityRuleRequest {
                    rule: Some(at_studio(
                        rule(DayOfWeek::Monday, start, end, monday, None),
                        &studio_id,
                    )),
                    request_id: uuid::Uuid::new_v4().to_string(),
                },
                &token,
            ))
            .await
        }));
    }
    let (mut made, mut refused) = (0, 0);
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => made += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                assert_eq!(reason(&status), "AVAILABILITY_RULE_OVERLAP");
                refused += 1;
            }
        }
    }
    assert_eq!((made, refused), (1, 17));
}
