//! `fitflow bench` scenarios of scheduling under contention: many clients
//! joining few group classes (`JoinClass`), and many clients racing for few
//! hour slots of one trainer (`BookAppointment`). Every caller books a
//! different client, each created first through the clients service; each
//! booking is made once (no closed loop: a class fills once). After the run
//! the classes are read back against their capacity and the calendar for
//! overlaps. Figures and checks are printed, never asserted.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context as _;
use chrono::{DateTime, Duration, DurationRound as _, Utc};
use fitflow_proto::clients as clients_pb;
use fitflow_proto::clients::clients_service_client::ClientsServiceClient;
use fitflow_proto::scheduling as pb;
use fitflow_proto::scheduling::scheduling_service_client::SchedulingServiceClient;
use fitflow_proto::types::Money;
use futures::{StreamExt as _, TryStreamExt as _};
use prost_types::Timestamp;
use tonic::transport::Channel;

use crate::bench::{BenchPlan, BenchReport, Scenario, Tally, bearer, error_reason};

/// Group classes the joins spread over.
const CLASSES: usize = 5;
/// Places in each group class.
const CAPACITY: i32 = 10;
/// Hour slots the individual bookings race for.
const SLOTS: usize = 5;
/// Clients joining when `--seed` is 0.
const DEFAULT_JOINERS: u64 = 500;
/// Clients booking when `--seed` is 0.
const DEFAULT_BOOKERS: u64 = 200;
/// The reason scheduling refuses a booking that overlaps another.
const TRAINER_BUSY: &str = "TRAINER_BUSY";

/// The channels the scenarios use.
pub(crate) struct Channels {
    /// Clients, to create the racing clients.
    pub clients: Channel,
    /// Scheduling, measured.
    pub scheduling: Channel,
}

/// How one booking attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// A place in the class, or the slot.
    Confirmed,
    /// A place on the class's waitlist.
    Waitlisted,
    /// The slot was taken (TRAINER_BUSY): an answer, not a failure.
    Refused,
    /// Anything else: the gRPC code and reason, for the count.
    Failed(String),
}

impl Outcome {
    /// A JoinClass answer: the participant's status, or the refusal.
    fn of_join(result: Result<pb::ParticipantStatus, &tonic::Status>) -> Self {
        match result {
            Ok(pb::ParticipantStatus::Confirmed) => Outcome::Confirmed,
            Ok(pb::ParticipantStatus::Waitlisted) => Outcome::Waitlisted,
            Ok(other) => Outcome::Failed(format!("status {other:?}")),
            Err(status) => Outcome::of_refusal(status),
        }
    }

    /// A BookAppointment answer: booked, or the refusal.
    fn of_booking(result: Result<(), &tonic::Status>) -> Self {
        match result {
            Ok(()) => Outcome::Confirmed,
            Err(status) => Outcome::of_refusal(status),
        }
    }

    fn of_refusal(status: &tonic::Status) -> Self {
        let reason = error_reason(status);
        if status.code() == tonic::Code::FailedPrecondition
            && reason.as_deref() == Some(TRAINER_BUSY)
        {
            return Outcome::Refused;
        }
        Outcome::Failed(format!(
            "{:?} {}",
            status.code(),
            reason.unwrap_or_default()
        ))
    }

    /// Whether the service answered as designed (a latency to count).
    fn is_answer(&self) -> bool {
        !matches!(self, Outcome::Failed(_))
    }
}

/// The outcomes of a run, counted.
#[derive(Debug, Default, PartialEq, Eq)]
struct Outcomes {
    confirmed: u64,
    waitlisted: u64,
    refused: u64,
    failed: BTreeMap<String, u64>,
}

impl Outcomes {
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Confirmed => self.confirmed += 1,
            Outcome::Waitlisted => self.waitlisted += 1,
            Outcome::Refused => self.refused += 1,
            Outcome::Failed(kind) => *self.failed.entry(kind).or_default() += 1,
        }
    }
}

/// One class's participants as read back after the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ClassCount {
    confirmed: u64,
    waitlisted: u64,
}

/// The classes (by index) holding more confirmed participants than `capacity`.
fn classes_over_capacity(classes: &[ClassCount], capacity: u64) -> Vec<usize> {
    classes
        .iter()
        .enumerate()
        .filter(|(_, class)| class.confirmed > capacity)
        .map(|(index, _)| index)
        .collect()
}

/// Pairs of appointments (start, end in seconds) that overlap in time;
/// touching ends do not overlap, as the calendar's exclusion constraint says.
fn overlapping_pairs(intervals: &[(i64, i64)]) -> usize {
    let mut sorted = intervals.to_vec();
    sorted.sort_unstable();
    let mut pairs = 0;
    for (index, &(_, end)) in sorted.iter().enumerate() {
        pairs += sorted[index + 1..]
            .iter()
            .take_while(|&&(later_start, _)| later_start < end)
            .count();
    }
    pairs
}

fn at(time: DateTime<Utc>) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: time.timestamp(),
        nanos: 0,
    })
}

fn cad(amount: &str) -> Option<Money> {
    Some(Money {
        currency_code: "CAD".into(),
        amount: amount.into(),
    })
}

/// Prepares the classes or slots and the clients, then races the bookings.
pub(crate) async fn run(
    plan: &BenchPlan,
    channels: Channels,
    token: String,
) -> anyhow::Result<BenchReport> {
    let mut scheduling = SchedulingServiceClient::new(channels.scheduling.clone());
    let group = plan.scenario == Scenario::JoinClass;
    let callers = match (plan.seed, group) {
        (0, true) => DEFAULT_JOINERS,
        (0, false) => DEFAULT_BOOKERS,
        (seed, _) => seed,
    };
    let class_type_id = scheduling
        .create_class_type(bearer(
            pb::CreateClassTypeRequest {
                class_type: Some(pb::ClassType {
                    name: if group { "Bench bootcamp" } else { "Bench 1:1" }.into(),
                    category: if group {
                        pb::ClassCategory::Group
                    } else {
                        pb::ClassCategory::Individual
                    } as i32,
                    duration_minutes: 60,
                    max_participants: if group { CAPACITY } else { 0 },
                    default_rate: cad("85.00"),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &token,
        )?)
        .await
        .context("creating the bench class type")?
        .into_inner()
        .class_type
        .context("no class type")?
        .id;
    // A month ahead, on the hour: in the future, clear of anything else.
    let first_slot = (Utc::now() + Duration::days(30)).duration_trunc(Duration::hours(1))?;
    let started = Instant::now();
    let client_ids = create_clients(&channels.clients, &token, callers, plan.concurrency).await?;
    let mut classes = Vec::new();
    if group {
        for index in 0..CLASSES {
            let start = first_slot + Duration::hours(i64::try_from(index)?);
            let class = scheduling
                .book_appointment(bearer(
                    pb::BookAppointmentRequest {
                        appointment: Some(pb::Appointment {
                            class_type_id: class_type_id.clone(),
                            start_time: at(start),
                            ..Default::default()
                        }),
                        request_id: uuid::Uuid::new_v4().to_string(),
                    },
                    &token,
                )?)
                .await
                .context("booking a bench class")?
                .into_inner()
                .appointment
                .context("no appointment")?;
            classes.push(class.id);
        }
    }
    eprintln!(
        "created {callers} clients{} in {:.1} s",
        if group {
            format!(" and {CLASSES} classes of {CAPACITY} places")
        } else {
            String::new()
        },
        started.elapsed().as_secs_f64()
    );

    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let client_ids = Arc::new(client_ids);
    let classes = Arc::new(classes);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..plan.concurrency {
        let (mut scheduling, token) = (scheduling.clone(), token.clone());
        let (client_ids, classes, next, outcomes) = (
            Arc::clone(&client_ids),
            Arc::clone(&classes),
            Arc::clone(&next),
            Arc::clone(&outcomes),
        );
        let class_type_id = class_type_id.clone();
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            loop {
                let turn = next.fetch_add(1, Ordering::Relaxed);
                let Some(client_id) = client_ids.get(turn) else {
                    break;
                };
                let begun = Instant::now();
                let outcome = if group {
                    let request = pb::JoinClassRequest {
                        appointment_id: classes[turn % CLASSES].clone(),
                        client_id: client_id.clone(),
                        request_id: uuid::Uuid::new_v4().to_string(),
                    };
                    match bearer(request, &token) {
                        Ok(request) => match scheduling.join_class(request).await {
                            Ok(response) => Outcome::of_join(Ok(response
                                .into_inner()
                                .participant
                                .map(|participant| participant.status())
                                .unwrap_or_default())),
                            Err(status) => Outcome::of_join(Err(&status)),
                        },
                        Err(status) => Outcome::of_join(Err(&status)),
                    }
                } else {
                    let slot = i64::try_from(turn % SLOTS).unwrap_or_default();
                    let request = pb::BookAppointmentRequest {
                        appointment: Some(pb::Appointment {
                            class_type_id: class_type_id.clone(),
                            start_time: at(first_slot + Duration::hours(slot)),
                            client_id: client_id.clone(),
                            ..Default::default()
                        }),
                        request_id: uuid::Uuid::new_v4().to_string(),
                    };
                    match bearer(request, &token) {
                        Ok(request) => match scheduling.book_appointment(request).await {
                            Ok(_) => Outcome::of_booking(Ok(())),
                            Err(status) => Outcome::of_booking(Err(&status)),
                        },
                        Err(status) => Outcome::of_booking(Err(&status)),
                    }
                };
                if outcome.is_answer() {
                    tally.record_duration(begun.elapsed());
                } else {
                    tally.record(begun, Err::<(), _>(()));
                }
                if let Ok(mut outcomes) = outcomes.lock() {
                    outcomes.add(outcome);
                }
            }
            tally
        }));
    }
    let report = Tally::merge(started, workers).await?;

    let outcomes = std::mem::take(
        &mut *outcomes
            .lock()
            .map_err(|_| anyhow::anyhow!("a worker panicked"))?,
    );
    println!(
        "outcomes     {} confirmed, {} waitlisted, {} refused ({TRAINER_BUSY}), {} failed {:?}",
        outcomes.confirmed,
        outcomes.waitlisted,
        outcomes.refused,
        outcomes.failed.values().sum::<u64>(),
        outcomes.failed
    );
    if group {
        check_classes(&mut scheduling, &token, &classes).await?;
    } else {
        check_calendar(&mut scheduling, &token, first_slot).await?;
    }
    Ok(report)
}

/// Creates `count` clients of the caller, `concurrency` at a time.
async fn create_clients(
    clients: &Channel,
    token: &str,
    count: u64,
    concurrency: usize,
) -> anyhow::Result<Vec<String>> {
    let api = ClientsServiceClient::new(clients.clone());
    futures::stream::iter(0..count)
        .map(|index| {
            let mut api = api.clone();
            async move {
                let request = bearer(
                    clients_pb::CreateClientRequest {
                        client: Some(clients_pb::Client {
                            first_name: "Bench".into(),
                            last_name: format!("Client {index}"),
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    },
                    token,
                )?;
                let client = api
                    .create_client(request)
                    .await
                    .context("creating a bench client")?
                    .into_inner()
                    .client
                    .context("no client")?;
                anyhow::Ok(client.id)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await
}

/// Reads every class's participants back and prints them against the capacity.
async fn check_classes(
    scheduling: &mut SchedulingServiceClient<Channel>,
    token: &str,
    classes: &[String],
) -> anyhow::Result<()> {
    let mut counts = Vec::new();
    for class in classes {
        let participants = scheduling
            .list_participants(bearer(
                pb::ListParticipantsRequest {
                    appointment_id: class.clone(),
                    show_cancelled: false,
                },
                token,
            )?)
            .await
            .context("reading a class's participants")?
            .into_inner()
            .participants;
        let count = |status: pb::ParticipantStatus| {
            participants
                .iter()
                .filter(|participant| participant.status() == status)
                .count() as u64
        };
        counts.push(ClassCount {
            confirmed: count(pb::ParticipantStatus::Confirmed),
            waitlisted: count(pb::ParticipantStatus::Waitlisted),
        });
    }
    let per_class: Vec<String> = counts
        .iter()
        .map(|class| format!("{}+{}", class.confirmed, class.waitlisted))
        .collect();
    let capacity = u64::try_from(CAPACITY)?;
    let over = classes_over_capacity(&counts, capacity);
    println!(
        "classes      confirmed+waitlisted per class {}; capacity {capacity}; over capacity: {}",
        per_class.join(", "),
        if over.is_empty() {
            "none".to_owned()
        } else {
            format!("{over:?}")
        }
    );
    Ok(())
}

/// Reads the trainer's calendar over the slots back and prints its overlaps.
async fn check_calendar(
    scheduling: &mut SchedulingServiceClient<Channel>,
    token: &str,
    first_slot: DateTime<Utc>,
) -> anyhow::Result<()> {
    let end = first_slot + Duration::hours(i64::try_from(SLOTS)?);
    let appointments = scheduling
        .list_appointments(bearer(
            pb::ListAppointmentsRequest {
                start_time: at(first_slot - Duration::hours(1)),
                end_time: at(end),
                page_size: 500,
                ..Default::default()
            },
            token,
        )?)
        .await
        .context("reading the trainer's calendar")?
        .into_inner()
        .appointments;
    let intervals: Vec<(i64, i64)> = appointments
        .iter()
        .filter_map(|appointment| {
            Some((
                appointment.start_time.as_ref()?.seconds,
                appointment.end_time.as_ref()?.seconds,
            ))
        })
        .collect();
    println!(
        "calendar     {} appointments in {SLOTS} hour slots; overlapping pairs: {}",
        appointments.len(),
        overlapping_pairs(&intervals)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::refusal;

    #[test]
    fn a_busy_trainer_is_a_refusal_and_anything_else_a_failure() {
        let busy = refusal(tonic::Code::FailedPrecondition, TRAINER_BUSY);
        assert_eq!(Outcome::of_booking(Err(&busy)), Outcome::Refused);
        assert_eq!(Outcome::of_booking(Ok(())), Outcome::Confirmed);
        let inactive = refusal(tonic::Code::FailedPrecondition, "CLASS_TYPE_INACTIVE");
        assert_eq!(
            Outcome::of_booking(Err(&inactive)),
            Outcome::Failed("FailedPrecondition CLASS_TYPE_INACTIVE".into())
        );
        let down = tonic::Status::unavailable("pool exhausted");
        assert!(!Outcome::of_join(Err(&down)).is_answer());
    }

    #[test]
    fn a_join_counts_as_its_participant_status() {
        let mut outcomes = Outcomes::default();
        for status in [
            pb::ParticipantStatus::Confirmed,
            pb::ParticipantStatus::Waitlisted,
            pb::ParticipantStatus::Waitlisted,
            pb::ParticipantStatus::Unspecified,
        ] {
            outcomes.add(Outcome::of_join(Ok(status)));
        }
        assert_eq!((outcomes.confirmed, outcomes.waitlisted), (1, 2));
        assert_eq!(outcomes.failed.values().sum::<u64>(), 1);
    }

    #[test]
    fn a_class_is_over_capacity_only_with_more_confirmed_than_places() {
        let class = |confirmed, waitlisted| ClassCount {
            confirmed,
            waitlisted,
        };
        let classes = [class(10, 90), class(11, 0), class(3, 0), class(12, 5)];
        assert_eq!(classes_over_capacity(&classes, 10), [1, 3]);
        assert!(classes_over_capacity(&[class(10, 500)], 10).is_empty());
    }

    #[test]
    fn overlapping_appointments_are_counted_in_pairs_and_touching_ones_are_not() {
        assert_eq!(overlapping_pairs(&[(0, 60), (60, 120), (120, 180)]), 0);
        assert_eq!(overlapping_pairs(&[(60, 120), (0, 60), (30, 90)]), 2);
        assert_eq!(overlapping_pairs(&[(0, 60), (0, 60), (0, 60)]), 3);
        assert_eq!(overlapping_pairs(&[]), 0);
    }
}
