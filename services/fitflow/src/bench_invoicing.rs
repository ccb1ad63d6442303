//! `fitflow bench` scenarios of billing: issuing one trainer's drafts under
//! contention (`IssueInvoice`, numbered without gaps in the issuing
//! transaction), and drafting a month's invoice from the schedule
//! (`DraftClientInvoice` over a month in which one client had up to 200
//! completed sessions). Everything is made through the API as the bench
//! user, a trainer with a registered tax profile in Ontario. The numbers
//! are read back and checked; figures and checks are printed, never
//! asserted.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context as _;
use chrono::{DateTime, Datelike as _, Months, NaiveDate, TimeZone as _, Utc};
use fitflow_proto::billing as pb;
use fitflow_proto::billing::billing_service_client::BillingServiceClient;
use fitflow_proto::clients as clients_pb;
use fitflow_proto::clients::clients_service_client::ClientsServiceClient;
use fitflow_proto::google::r#type::Date;
use fitflow_proto::scheduling as sched;
use fitflow_proto::scheduling::scheduling_service_client::SchedulingServiceClient;
use fitflow_proto::tenancy as tenancy_pb;
use fitflow_proto::tenancy::tenancy_service_client::TenancyServiceClient;
use fitflow_proto::types::{Money, Province};
use futures::{StreamExt as _, TryStreamExt as _};
use prost_types::Timestamp;
use tonic::transport::Channel;

use crate::bench::{BenchPlan, BenchReport, Scenario, Tally, bearer, error_reason};

/// Drafts issued when `--seed` is 0.
const DEFAULT_ISSUES: u64 = 100;
/// Sessions in the drafted month when `--seed` is 0; also the most, since
/// a draft bills at most 200 items.
const MONTH_SESSIONS: u64 = 200;
/// Sessions booked per day of the month (hourly from 12:00 UTC, all on the
/// same local date in Toronto): 8 × 28 days holds 200 even in February.
const SESSIONS_PER_DAY: u64 = 8;
/// Times an issue refused for want of a connection (UNAVAILABLE) is tried
/// again, as a client would; each retry is counted and printed.
const ISSUE_ATTEMPTS: u32 = 20;
/// The trainer's zone: the month's local dates are Toronto's.
const ZONE: chrono_tz::Tz = chrono_tz::America::Toronto;

/// The channels the scenarios use.
pub(crate) struct Channels {
    /// Tenancy, for the bench trainer's profile.
    pub tenancy: Channel,
    /// Clients, for the client billed.
    pub clients: Channel,
    /// Scheduling, for the sessions drafted.
    pub scheduling: Channel,
    /// Billing, measured.
    pub billing: Channel,
}

/// What the issued numbers of a run look like against 1..=expected.
#[derive(Debug, Default, PartialEq, Eq)]
struct NumberCheck {
    /// Numbers read.
    count: usize,
    /// Sequences of 1..=max(expected, highest) that no invoice has.
    missing: Vec<u32>,
    /// Sequences more than one invoice has.
    duplicates: Vec<u32>,
    /// Numbers not "YYYY-NNNNNN", or of another year than the first.
    malformed: Vec<String>,
}

impl NumberCheck {
    /// The numbers are exactly 1..=expected of one year.
    fn is_gapless(&self, expected: usize) -> bool {
        self.count == expected
            && self.missing.is_empty()
            && self.duplicates.is_empty()
            && self.malformed.is_empty()
    }
}

/// Checks invoice numbers ("YYYY-NNNNNN") against the series 1..=expected.
fn check_numbers(numbers: &[String], expected: usize) -> NumberCheck {
    let mut check = NumberCheck {
        count: numbers.len(),
        ..NumberCheck::default()
    };
    let mut year = None;
    let mut seen = BTreeMap::<u32, usize>::new();
    for number in numbers {
        let parsed = number.split_once('-').and_then(|(y, sequence)| {
            let well_formed = y.len() == 4
                && sequence.len() == 6
                && y.bytes()
                    .chain(sequence.bytes())
                    .all(|b| b.is_ascii_digit());
            well_formed.then(|| (y, sequence.parse::<u32>().ok()))
        });
        match parsed {
            Some((y, Some(sequence))) if *year.get_or_insert(y) == y => {
                *seen.entry(sequence).or_default() += 1;
            }
            _ => check.malformed.push(number.clone()),
        }
    }
    let highest = seen.keys().next_back().copied().unwrap_or(0);
    let top = highest.max(u32::try_from(expected).unwrap_or(u32::MAX));
    check.missing = (1..=top).filter(|n| !seen.contains_key(n)).collect();
    check.duplicates = seen
        .iter()
        .filter(|&(_, &times)| times > 1)
        .map(|(&sequence, _)| sequence)
        .collect();
    check
}

/// The first and last local dates of the month before `today`'s.
fn previous_month(today: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    let this_month = today.with_day(1)?;
    let first = this_month.checked_sub_months(Months::new(1))?;
    Some((first, this_month.pred_opt()?))
}

/// When the month's `index`th session starts: `SESSIONS_PER_DAY` a day,
/// hourly from 12:00 UTC.
fn session_start(first: NaiveDate, index: u64) -> Option<DateTime<Utc>> {
    let date = first.checked_add_days(chrono::Days::new(index / SESSIONS_PER_DAY))?;
    let hour = u32::try_from(12 + index % SESSIONS_PER_DAY).ok()?;
    Some(Utc.from_utc_datetime(&date.and_hms_opt(hour, 0, 0)?))
}

fn cad(amount: &str) -> Option<Money> {
    Some(Money {
        currency_code: "CAD".into(),
        amount: amount.into(),
    })
}

fn day(date: NaiveDate) -> Option<Date> {
    Some(Date {
        year: date.year(),
        month: i32::try_from(date.month()).unwrap_or_default(),
        day: i32::try_from(date.day()).unwrap_or_default(),
    })
}

/// Gives the bench user a trainer profile that can issue: Ontario, HST
/// registered.
async fn become_trainer(tenancy: &Channel, token: &str) -> anyhow::Result<()> {
    TenancyServiceClient::new(tenancy.clone())
        .create_trainer(bearer(
            tenancy_pb::CreateTrainerRequest {
                trainer: Some(tenancy_pb::Trainer {
                    business_name: "Bench Fitness".into(),
                    time_zone: ZONE.name().into(),
                    province: Province::On as i32,
                    tax_profile: Some(tenancy_pb::TaxProfile {
                        supplier_status: tenancy_pb::SupplierStatus::Registered as i32,
                        gst_hst_number: "123456782RT0001".into(),
                        qst_number: String::new(),
                    }),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            token,
        )?)
        .await
        .context("creating the bench trainer")?;
    Ok(())
}

/// Creates the client billed; its id.
async fn create_client(clients: &Channel, token: &str) -> anyhow::Result<String> {
    Ok(ClientsServiceClient::new(clients.clone())
        .create_client(bearer(
            clients_pb::CreateClientRequest {
                client: Some(clients_pb::Client {
                    first_name: "Bench".into(),
                    last_name: "Client".into(),
                    email: "bench.client@example.com".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            token,
        )?)
        .await
        .context("creating the bench client")?
        .into_inner()
        .client
        .context("no client")?
        .id)
}

/// Prepares the trainer and client, then runs the scenario.
pub(crate) async fn run(
    plan: &BenchPlan,
    channels: Channels,
    token: String,
) -> anyhow::Result<BenchReport> {
    become_trainer(&channels.tenancy, &token).await?;
    let client_id = create_client(&channels.clients, &token).await?;
    if plan.scenario == Scenario::IssueInvoices {
        issue_invoices(plan, &channels, token, client_id).await
    } else {
        draft_invoices(plan, &channels, token, client_id).await
    }
}

/// Makes the drafts, issues them all with `--concurrency` in flight, then
/// reads the numbers back and checks them.
async fn issue_invoices(
    plan: &BenchPlan,
    channels: &Channels,
    token: String,
    client_id: String,
) -> anyhow::Result<BenchReport> {
    let count = if plan.seed == 0 {
        DEFAULT_ISSUES
    } else {
        plan.seed
    };
    let billing = BillingServiceClient::new(channels.billing.clone());
    let started = Instant::now();
    let drafts: Vec<pb::Invoice> = futures::stream::iter(0..count)
        .map(|_| {
            let (mut billing, token, client_id) = (billing.clone(), &token, client_id.clone());
            async move {
                let request = bearer(
                    pb::CreateInvoiceRequest {
                        invoice: Some(pb::Invoice {
                            client_id,
                            lines: vec![pb::InvoiceLine {
                                description: "Personal training, 60 min".into(),
                                unit_price: cad("85.00"),
                                province: Province::On as i32,
                                ..Default::default()
                            }],
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    },
                    token,
                )?;
                billing
                    .create_invoice(request)
                    .await
                    .context("creating a bench draft")?
                    .into_inner()
                    .invoice
                    .context("no invoice")
            }
        })
        .buffer_unordered(plan.concurrency.clamp(1, 16))
        .try_collect()
        .await?;
    eprintln!(
        "created {count} drafts in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let drafts = Arc::new(drafts);
    let next = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let failures = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..plan.concurrency {
        let (mut billing, token) = (billing.clone(), token.clone());
        let (drafts, next, retries, failures) = (
            Arc::clone(&drafts),
            Arc::clone(&next),
            Arc::clone(&retries),
            Arc::clone(&failures),
        );
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            while let Some(draft) = drafts.get(next.fetch_add(1, Ordering::Relaxed)) {
                let begun = Instant::now();
                let mut attempt = 1;
                let outcome = loop {
                    let outcome = match bearer(
                        pb::IssueInvoiceRequest {
                            invoice_id: draft.id.clone(),
                            etag: draft.etag.clone(),
                        },
                        &token,
                    ) {
                        Ok(request) => billing.issue_invoice(request).await.map(|_| ()),
                        Err(status) => Err(status),
                    };
                    match outcome {
                        Err(status)
                            if status.code() == tonic::Code::Unavailable
                                && attempt < ISSUE_ATTEMPTS =>
                        {
                            attempt += 1;
                            if let Ok(mut retries) = retries.lock() {
                                let reason = error_reason(&status).unwrap_or_default();
                                *retries.entry(reason).or_default() += 1;
                            }
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                        outcome => break outcome,
                    }
                };
                if let Err(status) = &outcome
                    && let Ok(mut failures) = failures.lock()
                {
                    let kind = format!(
                        "{:?} {}",
                        status.code(),
                        error_reason(status).unwrap_or_default()
                    );
                    *failures.entry(kind).or_default() += 1;
                }
                tally.record(begun, outcome);
            }
            tally
        }));
    }
    let report = Tally::merge(started, workers).await?;

    let numbers = issued_numbers(&channels.billing, &token).await?;
    let issued = usize::try_from(report.ok)?;
    let check = check_numbers(&numbers, issued);
    println!(
        "retries      {:?} (UNAVAILABLE by reason, each tried again after 50 ms); failures {:?}",
        retries
            .lock()
            .map(|retries| retries.clone())
            .unwrap_or_default(),
        failures
            .lock()
            .map(|failures| failures.clone())
            .unwrap_or_default()
    );
    println!(
        "numbers      {} issued, {} read back: {}",
        issued,
        check.count,
        if check.is_gapless(issued) {
            format!("1..{issued} of one year, no gap, no duplicate")
        } else {
            format!(
                "NOT gapless: missing {:?}, duplicates {:?}, malformed {:?}",
                check.missing, check.duplicates, check.malformed
            )
        }
    );
    Ok(report)
}

/// The numbers of the caller's invoices that are not drafts, read back
/// page by page.
async fn issued_numbers(billing: &Channel, token: &str) -> anyhow::Result<Vec<String>> {
    let mut billing = BillingServiceClient::new(billing.clone());
    let mut numbers = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = billing
            .list_invoices(bearer(
                pb::ListInvoicesRequest {
                    page_size: 100,
                    page_token,
                    ..Default::default()
                },
                token,
            )?)
            .await
            .context("reading the invoices back")?
            .into_inner();
        numbers.extend(
            page.invoices
                .into_iter()
                .filter(|invoice| invoice.status() != pb::InvoiceStatus::Draft)
                .map(|invoice| invoice.number),
        );
        if page.next_page_token.is_empty() {
            return Ok(numbers);
        }
        page_token = page.next_page_token;
    }
}

/// Books and completes the month's sessions of the client, then drafts the
/// month's invoice and voids it, in turn, for the plan's duration.
async fn draft_invoices(
    plan: &BenchPlan,
    channels: &Channels,
    token: String,
    client_id: String,
) -> anyhow::Result<BenchReport> {
    let sessions = if plan.seed == 0 {
        MONTH_SESSIONS
    } else {
        plan.seed.min(MONTH_SESSIONS)
    };
    let (first, last) =
        previous_month(Utc::now().with_timezone(&ZONE).date_naive()).context("last month")?;
    let scheduling = SchedulingServiceClient::new(channels.scheduling.clone());
    let class_type_id = scheduling
        .clone()
        .create_class_type(bearer(
            sched::CreateClassTypeRequest {
                class_type: Some(sched::ClassType {
                    name: "Bench 1:1".into(),
                    category: sched::ClassCategory::Individual as i32,
                    duration_minutes: 60,
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
    let started = Instant::now();
    futures::stream::iter(0..sessions)
        .map(|index| {
            let mut scheduling = scheduling.clone();
            let (token, class_type_id, client_id) = (&token, &class_type_id, &client_id);
            async move {
                let start = session_start(first, index).context("a session's start")?;
                let appointment = scheduling
                    .book_appointment(bearer(
                        sched::BookAppointmentRequest {
                            appointment: Some(sched::Appointment {
                                class_type_id: class_type_id.clone(),
                                start_time: Some(Timestamp {
                                    seconds: start.timestamp(),
                                    nanos: 0,
                                }),
                                client_id: client_id.clone(),
                                ..Default::default()
                            }),
                            request_id: uuid::Uuid::new_v4().to_string(),
                        },
                        token,
                    )?)
                    .await
                    .context("booking a bench session")?
                    .into_inner()
                    .appointment
                    .context("no appointment")?;
                scheduling
                    .complete_appointment(bearer(
                        sched::CompleteAppointmentRequest {
                            appointment_id: appointment.id,
                            attendance: vec![sched::Attendance {
                                client_id: client_id.clone(),
                                attended: true,
                            }],
                            etag: String::new(),
                        },
                        token,
                    )?)
                    .await
                    .context("completing a bench session")?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(plan.concurrency.clamp(1, 16))
        .try_collect::<Vec<()>>()
        .await?;
    eprintln!(
        "booked and completed {sessions} sessions from {first} to {last} through the API in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // One at a time: concurrent drafts of one client would bill each item
    // once between them, and all but one would find nothing to bill.
    let mut billing = BillingServiceClient::new(channels.billing.clone());
    let mut tally = Tally::new();
    let mut first_draft = None;
    let started = Instant::now();
    let deadline = started + plan.duration;
    while Instant::now() < deadline {
        let begun = Instant::now();
        let drafted = billing
            .draft_client_invoice(bearer(
                pb::DraftClientInvoiceRequest {
                    client_id: client_id.clone(),
                    start_date: day(first),
                    end_date: day(last),
                    request_id: uuid::Uuid::new_v4().to_string(),
                    ..Default::default()
                },
                &token,
            )?)
            .await;
        let took = begun.elapsed();
        let invoice = match drafted {
            Ok(response) => response.into_inner().invoice.context("no invoice")?,
            Err(status) => {
                tally.record(begun, Err::<(), _>(()));
                eprintln!(
                    "a draft failed ({:?} {}); stopping",
                    status.code(),
                    error_reason(&status).unwrap_or_default()
                );
                break;
            }
        };
        tally.record_duration(took);
        billing
            .void_invoice(bearer(
                pb::VoidInvoiceRequest {
                    invoice_id: invoice.id.clone(),
                    reason: "Bench: drafted again".into(),
                    etag: invoice.etag.clone(),
                },
                &token,
            )?)
            .await
            .context("voiding a bench draft")?;
        first_draft.get_or_insert(invoice);
    }
    if let Some(invoice) = &first_draft {
        println!(
            "draft        {} lines (of {sessions} sessions), subtotal {} CAD; each voided before the next",
            invoice.lines.len(),
            invoice
                .subtotal
                .as_ref()
                .map(|money| money.amount.as_str())
                .unwrap_or_default()
        );
    }
    Tally::merge(started, vec![tokio::spawn(async move { tally })]).await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn numbers(sequences: &[u32]) -> Vec<String> {
        sequences
            .iter()
            .map(|sequence| format!("2026-{sequence:06}"))
            .collect()
    }

    #[test]
    fn numbers_one_to_n_in_any_order_are_gapless() {
        let check = check_numbers(&numbers(&[3, 1, 2, 5, 4]), 5);
        assert!(check.is_gapless(5), "{check:?}");
        assert!(check_numbers(&[], 0).is_gapless(0));
    }

    #[test]
    fn a_gap_a_duplicate_or_a_missing_tail_is_reported() {
        let gap = check_numbers(&numbers(&[1, 2, 4]), 3);
        assert_eq!(gap.missing, [3]);
        assert!(!gap.is_gapless(3));
        let duplicate = check_numbers(&numbers(&[1, 2, 2]), 3);
        assert_eq!(
            (duplicate.missing, duplicate.duplicates),
            (vec![3], vec![2])
        );
        let short = check_numbers(&numbers(&[1, 2]), 4);
        assert_eq!(short.missing, [3, 4]);
    }

    #[test]
    fn a_number_of_another_form_or_year_is_malformed() {
        let mut read = numbers(&[1, 2]);
        read.extend(["2027-000003".to_owned(), "2026-3".into(), "x".into()]);
        let check = check_numbers(&read, 2);
        assert_eq!(check.malformed, ["2027-000003", "2026-3", "x"]);
        assert!(!check.is_gapless(2));
    }

    #[test]
    fn the_drafted_month_is_the_one_before_today() {
        let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(
            previous_month(date(2026, 11, 29)),
            Some((date(2026, 10, 1), date(2026, 10, 31)))
        );
        assert_eq!(
            previous_month(date(2026, 1, 1)),
            Some((date(2025, 12, 1), date(2025, 12, 31)))
        );
        assert_eq!(
            previous_month(date(2028, 3, 31)),
            Some((date(2028, 2, 1), date(2028, 2, 29)))
        );
    }

    #[test]
    fn two_hundred_sessions_fit_a_february_on_local_dates_without_overlap() {
        let first = NaiveDate::from_ymd_opt(2027, 2, 1).unwrap();
        let starts: Vec<_> = (0..MONTH_SESSIONS)
            .map(|index| session_start(first, index).unwrap())
            .collect();
        let local_dates: BTreeSet<_> = starts
            .iter()
            .map(|start| start.with_timezone(&ZONE).date_naive())
            .collect();
        assert!(local_dates.iter().all(|date| date.month() == 2));
        for pair in starts.windows(2) {
            assert!(pair[1] - pair[0] >= chrono::Duration::hours(1));
        }
    }
}
