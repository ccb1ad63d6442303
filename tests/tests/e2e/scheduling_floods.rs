//! Floods of scheduling's costliest calls (issue 11): 500 concurrent
//! `ListFreeSlots` over the longest range with the largest buffer, 500
//! concurrent `.ics` exports, and 200 concurrent `BookSeries` of 100
//! sessions each. The checks are of the mechanism: every call is
//! answered at once or after a short wait in line (a result, or
//! RESOURCE_EXHAUSTED SCHEDULING_BUSY with a retry hint — never INTERNAL, a
//! pool timeout or the request deadline), another trainer is served
//! throughout, and this process's resident memory (the stack runs
//! in-process) stays under a stated bound.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use fitflow_e2e::{Sandbox, bearer};
use fitflow_proto::google::r#type::DayOfWeek;
use fitflow_proto::scheduling as pb;
use tonic::Code;

use crate::identity_support::{reason, retry_delay};
use crate::scheduling::{EVERYONE, at, class_type, next_year, scheduling};
use crate::scheduling_slots::{create_rule, rule};
use crate::tenancy::trainer;

/// The most resident memory may grow during a flood. Measured: see each test.
const FLOOD_MEMORY_BOUND_MIB: u64 = 256;

/// The slowest answer the bystander may get while a flood runs. Generous,
/// as the test shares two cores with the rest of the suite: what it
/// catches is a stall (the bystander waiting for the pool behind the
/// flood, which ends in DATABASE_UNAVAILABLE after the pool's timeout).
const BYSTANDER_BOUND: Duration = Duration::from_secs(5);

/// How a flood was answered, and what a bystander saw meanwhile.
pub(crate) struct Outcome {
    answers: HashMap<(Code, String), u64>,
    retry_hint_missing: u64,
    bystander: Vec<Duration>,
    bystander_failures: Vec<Code>,
    memory_growth_mib: u64,
    took: Duration,
}

impl Outcome {
    /// Nothing was refused but for load (with a retry hint), the bystander
    /// was always served in time, and memory stayed bounded.
    fn assert_bounded_and_bystander_served(&self) {
        self.assert_answered_as(&[]);
    }

    /// As [`Self::assert_bounded_and_bystander_served`], where the flood may
    /// also be answered with the `also` refusals (code and reason).
    pub(crate) fn assert_answered_as(&self, also: &[(Code, &str)]) {
        let slowest = self.bystander.iter().max().copied().unwrap_or_default();
        eprintln!(
            "flood answered {:?} in {:?}; bystander refused {:?}, slowest {slowest:?} of {}; memory +{} MiB",
            self.answers,
            self.took,
            self.bystander_failures,
            self.bystander.len(),
            self.memory_growth_mib
        );
        let unexpected: Vec<_> = self
            .answers
            .iter()
            .filter(|((code, why), _)| {
                !matches!(
                    (code, why.as_str()),
                    (Code::Ok, "") | (Code::ResourceExhausted, "SCHEDULING_BUSY")
                ) && !also.contains(&(*code, why.as_str()))
            })
            .collect();
        assert!(unexpected.is_empty(), "unexpected answers: {unexpected:?}");
        // Four run at once and more wait: a flood is served, not refused whole.
        let served = self.answers.get(&(Code::Ok, String::new())).copied();
        assert!(served.unwrap_or(0) >= 4, "served: {served:?}");
        assert_eq!(
            self.retry_hint_missing, 0,
            "every refusal says when to retry"
        );
        assert!(
            self.bystander_failures.is_empty(),
            "the bystander was refused: {:?}",
            self.bystander_failures
        );
        let slowest = self.bystander.iter().max().expect("the bystander ran");
        assert!(
            *slowest < BYSTANDER_BOUND,
            "the bystander waited {slowest:?} while the flood took {:?}",
            self.took
        );
        assert!(
            self.memory_growth_mib < FLOOD_MEMORY_BOUND_MIB,
            "resident memory grew {} MiB",
            self.memory_growth_mib
        );
    }
}

/// What the bystander reads during a flood: their class type, and when
/// given, one of their appointments and their appointments' first page.
#[derive(Clone, Copy)]
pub(crate) struct Bystander<'a> {
    pub(crate) token: &'a str,
    pub(crate) class_type_id: &'a str,
    /// One of the bystander's appointments and its start.
    pub(crate) appointment: Option<(&'a str, DateTime<Utc>)>,
}

impl Bystander<'_> {
    /// One round of reads, stopping at the first refusal.
    async fn read(
        api: &mut pb::scheduling_service_client::SchedulingServiceClient<tonic::transport::Channel>,
        token: &str,
        class_type_id: &str,
        appointment: Option<(&str, DateTime<Utc>)>,
    ) -> Result<(), tonic::Status> {
        api.get_class_type(bearer(
            pb::GetClassTypeRequest {
                class_type_id: class_type_id.to_owned(),
            },
            token,
        ))
        .await?;
        if let Some((appointment_id, start)) = appointment {
            api.get_appointment(bearer(
                pb::GetAppointmentRequest {
                    appointment_id: appointment_id.to_owned(),
                },
                token,
            ))
            .await?;
            let listed = api
                .list_appointments(bearer(
                    pb::ListAppointmentsRequest {
                        start_time: at(start - chrono::Duration::days(1)),
                        end_time: at(start + chrono::Duration::days(7)),
                        page_size: 50,
                        ..Default::default()
                    },
                    token,
                ))
                .await?
                .into_inner();
            assert!(!listed.appointments.is_empty(), "the bystander's own");
        }
        Ok(())
    }
}

/// A borrowed view of an owned (appointment id, start).
fn mine(appointment: &Option<(String, DateTime<Utc>)>) -> Option<(&str, DateTime<Utc>)> {
    appointment
        .as_ref()
        .map(|(id, start)| (id.as_str(), *start))
}

/// Runs `callers` copies of `call` at once, over connections of 100 callers
/// each, while `bystander_token`'s trainer reads their class type one call
/// at a time on a connection of their own.
async fn flood<F, Fut>(
    sandbox: &Sandbox,
    (bystander_token, bystander_class): (&str, &str),
    callers: usize,
    call: F,
) -> Outcome
where
    F: Fn(pb::scheduling_service_client::SchedulingServiceClient<tonic::transport::Channel>) -> Fut,
    Fut: Future<Output = Result<(), tonic::Status>> + Send + 'static,
{
    let bystander = Bystander {
        token: bystander_token,
        class_type_id: bystander_class,
        appointment: None,
    };
    flood_beside(sandbox, bystander, callers, call).await
}

/// [`flood`], with the bystander's reads chosen.
pub(crate) async fn flood_beside<F, Fut>(
    sandbox: &Sandbox,
    bystander: Bystander<'_>,
    callers: usize,
    call: F,
) -> Outcome
where
    F: Fn(pb::scheduling_service_client::SchedulingServiceClient<tonic::transport::Channel>) -> Fut,
    Fut: Future<Output = Result<(), tonic::Status>> + Send + 'static,
{
    let baseline = resident_mib();
    let done = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn({
        let done = Arc::clone(&done);
        async move {
            let mut peak = resident_mib();
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(resident_mib());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        }
    });
    let bystander = tokio::spawn({
        let done = Arc::clone(&done);
        let mut api = scheduling(sandbox);
        let (token, class) = (
            bystander.token.to_owned(),
            bystander.class_type_id.to_owned(),
        );
        let appointment = bystander
            .appointment
            .map(|(id, start)| (id.to_owned(), start));
        // Its connection is made before the flood starts, and not timed.
        Bystander::read(&mut api, &token, &class, mine(&appointment))
            .await
            .expect("the bystander is served before the flood");
        async move {
            let (mut latencies, mut failures) = (Vec::new(), Vec::new());
            loop {
                let started = Instant::now();
                match Bystander::read(&mut api, &token, &class, mine(&appointment)).await {
                    Ok(_) => latencies.push(started.elapsed()),
                    Err(status) => failures.push(status.code()),
                }
                if done.load(Ordering::Relaxed) {
                    break (latencies, failures);
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
    });
    let clients: Vec<_> = (0..callers.div_ceil(100))
        .map(|_| scheduling(sandbox))
        .collect();
    let started = Instant::now();
    let calls: Vec<_> = (0..callers)
        .map(|index| tokio::spawn(call(clients[index / 100].clone())))
        .collect();
    let (mut answers, mut retry_hint_missing) = (HashMap::new(), 0);
    for call in calls {
        let (code, why) = match call.await.expect("the call ran") {
            Ok(()) => (Code::Ok, String::new()),
            Err(status) => {
                if status.code() == Code::ResourceExhausted && retry_delay(&status).is_none() {
                    retry_hint_missing += 1;
                }
                (status.code(), reason(&status))
            }
        };
        *answers.entry((code, why)).or_insert(0_u64) += 1;
    }
    let took = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let (bystander, bystander_failures) = bystander.await.expect("the bystander ran");
    let peak = sampler.await.expect("the sampler ran");
    Outcome {
        answers,
        retry_hint_missing,
        bystander,
        bystander_failures,
        memory_growth_mib: peak.saturating_sub(baseline),
        took,
    }
}

/// This process's resident memory in MiB.
pub(crate) fn resident_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|number| number.trim().parse::<u64>().ok())
        .expect("a VmRSS line")
        / 1024
}

/// Books `series` daily series of 100 sessions of `class_type_id` from
/// `base`, each series `spacing_minutes` after the last.
async fn book_daily_series(
    sandbox: &Sandbox,
    token: &str,
    class_type_id: &str,
    base: DateTime<Utc>,
    (series, spacing_minutes): (i64, i64),
) {
    for index in 0..series {
        scheduling(sandbox)
            .book_series(bearer(
                pb::BookSeriesRequest {
                    appointment: Some(pb::Appointment {
                        class_type_id: class_type_id.into(),
                        start_time: at(base + chrono::Duration::minutes(spacing_minutes * index)),
                        ..Default::default()
                    }),
                    time_zone: "UTC".into(),
                    rule: Some(pb::WeeklyRule {
                        days: (1..=7).collect(),
                        interval_weeks: 1,
                        until: None,
                        count: 100,
                    }),
                    request_id: uuid::Uuid::new_v4().to_string(),
                },
                token,
            ))
            .await
            .expect("book a series");
    }
}

#[tokio::test]
async fn five_hundred_concurrent_free_slot_searches_over_a_month_are_answered_and_other_trainers_are_served()
 {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let bea = trainer(&sandbox, "Bea").await;
    let ana_class = class_type(&sandbox, &ana.2, pb::ClassCategory::Group, 10).await;
    let bea_class = class_type(&sandbox, &bea.2, pb::ClassCategory::Individual, 1).await;
    let base = next_year(3, 1, 6);
    // Available all day, every day: every 15-minute step of the month is a
    // candidate, checked against ten sessions a day with a four-hour buffer.
    for day in [
        DayOfWeek::Monday,
        DayOfWeek::Tuesday,
        DayOfWeek::Wednesday,
        DayOfWeek::Thursday,
        DayOfWeek::Friday,
        DayOfWeek::Saturday,
        DayOfWeek::Sunday,
    ] {
        create_rule(
            &sandbox,
            &ana.2,
            rule(day, (0, 0), (24, 0), base.date_naive(), None),
        )
        .await
        .expect("an all-day rule");
    }
    book_daily_series(&sandbox, &ana.2, &ana_class.id, base, (10, 90)).await;

    let (from, to) = (base, base + chrono::Duration::days(31));
    let token = ana.2.clone();
    let class = ana_class.id.clone();
    let outcome = flood(&sandbox, (&bea.2, &bea_class.id), 500, move |mut api| {
        let (token, class) = (token.clone(), class.clone());
        async move {
            api.list_free_slots(bearer(
                pb::ListFreeSlotsRequest {
                    class_type_id: class,
                    start_time: at(from),
                    end_time: at(to),
                    buffer_minutes: 240,
                    ..Default::default()
                },
                &token,
            ))
            .await
            .map(|_| ())
        }
    })
    .await;
    outcome.assert_bounded_and_bystander_served();
}

#[tokio::test]
async fn five_hundred_concurrent_calendar_exports_are_answered_in_bounded_memory_and_other_trainers_are_served()
 {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let bea = trainer(&sandbox, "Bea").await;
    let ana_class = class_type(&sandbox, &ana.2, pb::ClassCategory::Group, 10).await;
    let bea_class = class_type(&sandbox, &bea.2, pb::ClassCategory::Individual, 1).await;
    let base = next_year(3, 1, 6);
    // 1,000 appointments: each file is about 300 KiB.
    book_daily_series(&sandbox, &ana.2, &ana_class.id, base, (10, 90)).await;

    let (from, to) = (base, base + chrono::Duration::days(100));
    let token = ana.2.clone();
    let outcome = flood(&sandbox, (&bea.2, &bea_class.id), 500, move |mut api| {
        let token = token.clone();
        async move {
            let mut stream = api
                .export_trainer_calendar(bearer(
                    pb::ExportTrainerCalendarRequest {
                        trainer_id: String::new(),
                        start_time: at(from),
                        end_time: at(to),
                    },
                    &token,
                ))
                .await?
                .into_inner();
            let mut bytes = 0;
            while let Some(chunk) = stream.message().await? {
                bytes += chunk.data.len();
            }
            assert!(bytes > 100_000, "a whole file: {bytes} bytes");
            Ok(())
        }
    })
    .await;
    outcome.assert_bounded_and_bystander_served();
}

/// A daily series of 100 sessions of `class_type_id` from `start` (UTC).
fn daily_series(class_type_id: &str, start: DateTime<Utc>) -> pb::BookSeriesRequest {
    pb::BookSeriesRequest {
        appointment: Some(pb::Appointment {
            class_type_id: class_type_id.into(),
            start_time: at(start),
            ..Default::default()
        }),
        time_zone: "UTC".into(),
        rule: Some(pb::WeeklyRule {
            days: (1..=7).collect(),
            interval_weeks: 1,
            until: None,
            count: 100,
        }),
        request_id: uuid::Uuid::new_v4().to_string(),
    }
}

#[tokio::test]
async fn two_hundred_concurrent_series_bookings_are_booked_or_refused_and_another_trainer_reads_throughout()
 {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let bea = trainer(&sandbox, "Bea").await;
    let bea_class = class_type(&sandbox, &bea.2, pb::ClassCategory::Group, 10).await;
    let base = next_year(3, 1, 6);
    let bea_session = crate::scheduling::book(&sandbox, &bea.2, &bea_class.id, base, "")
        .await
        .expect("Bea's session");
    // Four trainers, 50 series each of 100 daily sessions (20,000 sessions
    // asked for): a trainer's series i starts at hour i % 5 of the first
    // day, so 5 of each trainer's can be booked and the others overlap one
    // of them (TRAINER_BUSY, after waiting on each other's held time).
    let mut booking = Vec::new();
    for name in ["Ana", "Cal", "Dee", "Eve"] {
        let busy = trainer(&sandbox, name).await;
        let class = class_type(&sandbox, &busy.2, pb::ClassCategory::Group, 10).await;
        booking.push((busy.2, class.id));
    }
    let booking = Arc::new(booking);
    let outcome = flood_beside(
        &sandbox,
        Bystander {
            token: &bea.2,
            class_type_id: &bea_class.id,
            appointment: Some((&bea_session.id, base)),
        },
        200,
        move |mut api| {
            let booking = Arc::clone(&booking);
            static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let index = NEXT.fetch_add(1, Ordering::Relaxed);
            async move {
                let (token, class) = &booking[index % booking.len()];
                let hour = i64::try_from((index / booking.len()) % 5).expect("an hour");
                api.book_series(bearer(
                    daily_series(class, base + chrono::Duration::hours(hour)),
                    token,
                ))
                .await
                .map(|_| ())
            }
        },
    )
    .await;
    outcome.assert_answered_as(&[(Code::FailedPrecondition, "TRAINER_BUSY")]);

    // All or nothing: every series booked holds its 100 sessions, and no
    // trainer holds more than the 5 series that fit.
    let admin = sandbox.db.admin_pool().await;
    let per_series: Vec<(i64,)> = sqlx::query_as(
        "SELECT count(*) FROM scheduling.appointments WHERE series_id IS NOT NULL \
         GROUP BY series_id",
    )
    .fetch_all(&admin)
    .await
    .expect("count sessions per series");
    assert!(
        per_series.iter().all(|(sessions,)| *sessions == 100),
        "{per_series:?}"
    );
    let booked = outcome
        .answers
        .get(&(Code::Ok, String::new()))
        .copied()
        .unwrap_or(0);
    assert_eq!(per_series.len() as u64, booked, "one series per success");
    assert!(booked <= 20, "at most 5 series fit each trainer: {booked}");
}
