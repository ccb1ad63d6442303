//! What scheduling asks the tenancy service, with the user's token
//! forwarded: a trainer's IANA time zone (`GetTrainer`), the zone their
//! availability rules at no studio are read in; a studio's zone
//! (`GetStudio`), the zone a session at the studio is dated in and the
//! trainer's rules there are read in; and a trainer's contracts
//! (`ListContracts`), which decide whether they may be booked at a studio.
//! A zone is reused for [`ZONE_TTL`] and asked once however many requests
//! want it at once: 500 concurrent free-slot searches for one trainer made
//! 500 `GetTrainer` calls, and tenancy, queueing them, timed most of them
//! out (DEPENDENCY_UNAVAILABLE). A studio tenancy does not know (or deleted)
//! is remembered as such for as long. Callers have already checked that the
//! user acts for the trainer; a zone is not a secret.
//!
//! What decides a write is asked afresh: a booking or a move at a studio,
//! and a rule created at one, ask `GetStudio` without the cache
//! ([`TrainerZones::live_studio_zone`], whose answer then refreshes it), so
//! a studio deleted a second ago is refused at once (STUDIO_NOT_FOUND); and
//! contracts are asked at each booking: one ended a minute ago must stop new
//! bookings. Reads (free slots, billing's dates) take the cached zone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use chrono::NaiveDate;
use fitflow_proto::tenancy::tenancy_service_client::TenancyServiceClient;
use fitflow_proto::tenancy::{
    ContractState, GetStudioRequest, GetTrainerRequest, ListContractsRequest,
    list_contracts_request,
};
use fitflow_server::client::forwarding_request;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::SchedulingError;

/// Longest wait for tenancy when the caller set no shorter deadline.
const ZONE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a trainer's zone is reused: a zone changed in tenancy applies
/// here within this.
pub(crate) const ZONE_TTL: Duration = Duration::from_secs(60);
/// Most trainers whose zones are kept; beyond it, stale ones are dropped
/// (and all, if none is stale).
const MAX_CACHED: usize = 10_000;

/// Whose zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Subject {
    Trainer(Uuid),
    Studio(Uuid),
}

/// The days a contract covers: from `start` to `end` (inclusive; open when
/// `None`), in the studio's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContractSpan {
    pub start: NaiveDate,
    pub end: Option<NaiveDate>,
}

impl ContractSpan {
    /// Whether it covers `day`.
    pub(crate) fn covers(&self, day: NaiveDate) -> bool {
        self.start <= day && self.end.is_none_or(|end| day <= end)
    }
}

/// Pages of contracts read for one booking: 200 each, far beyond any
/// trainer's contracts.
const CONTRACT_PAGES: usize = 5;

/// A zone, asked once: every request that wants it while it is being asked
/// waits for the same answer; a failed ask leaves it empty for the next
/// request to try again. `None`: a studio tenancy does not know, or deleted.
struct Cached {
    zone: Arc<OnceCell<Option<chrono_tz::Tz>>>,
    since: Instant,
}

/// Trainers' and studios' time zones, and trainers' contracts, from
/// tenancy over mTLS.
#[derive(Clone)]
pub struct TrainerZones {
    client: TenancyServiceClient<Channel>,
    cache: Arc<Mutex<HashMap<Subject, Cached>>>,
}

impl TrainerZones {
    /// Asks tenancy over `channel`.
    pub fn new(channel: Channel) -> Self {
        Self {
            client: TenancyServiceClient::new(channel),
            cache: Arc::default(),
        }
    }

    /// The trainer's zone from their tenancy profile (asked as the user
    /// whose `bearer` token this is, who acts for the trainer); UTC for a
    /// trainer without a profile (or with a zone this build does not know),
    /// as documentation does. Reused for [`ZONE_TTL`].
    pub async fn zone(
        &self,
        bearer: &str,
        trainer_id: Uuid,
    ) -> Result<chrono_tz::Tz, SchedulingError> {
        let cell = self.cell(Subject::Trainer(trainer_id));
        let zone = cell
            .get_or_try_init(|| async { self.ask(bearer, trainer_id).await.map(Some) })
            .await?;
        Ok(zone.unwrap_or(chrono_tz::UTC))
    }

    /// The zone of a studio (asked as the user whose `bearer` token this
    /// is: any signed-in user reads a live studio's card), or
    /// `StudioNotFound`. Reused for [`ZONE_TTL`], as is a studio's absence.
    pub async fn studio_zone(
        &self,
        bearer: &str,
        studio_id: Uuid,
    ) -> Result<chrono_tz::Tz, SchedulingError> {
        let cell = self.cell(Subject::Studio(studio_id));
        cell.get_or_try_init(|| self.ask_studio(bearer, studio_id))
            .await?
            .ok_or(SchedulingError::StudioNotFound)
    }

    /// The zone of a live studio as tenancy says now (no cache), or
    /// `StudioNotFound`: for what writes (a booking or move at the studio,
    /// a rule there). The answer replaces the cached one.
    pub async fn live_studio_zone(
        &self,
        bearer: &str,
        studio_id: Uuid,
    ) -> Result<chrono_tz::Tz, SchedulingError> {
        let answer = self.ask_studio(bearer, studio_id).await?;
        let subject = Subject::Studio(studio_id);
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() < MAX_CACHED || cache.contains_key(&subject) {
            cache.insert(
                subject,
                Cached {
                    zone: Arc::new(OnceCell::new_with(Some(answer))),
                    since: Instant::now(),
                },
            );
        }
        drop(cache);
        answer.ok_or(SchedulingError::StudioNotFound)
    }

    /// The days `trainer_id`'s contracts with `studio_id` cover (accepted
    /// ones: active, or ended with their last day), asked as the user whose
    /// `bearer` token this is, who acts for the trainer.
    pub(crate) async fn contract_spans(
        &self,
        bearer: &str,
        trainer_id: Uuid,
        studio_id: Uuid,
    ) -> Result<Vec<ContractSpan>, SchedulingError> {
        let mut client = self.client.clone();
        let mut spans = Vec::new();
        let mut page_token = String::new();
        for _ in 0..CONTRACT_PAGES {
            let request = forwarding_request(
                ListContractsRequest {
                    party: Some(list_contracts_request::Party::TrainerId(
                        trainer_id.to_string(),
                    )),
                    state: ContractState::Unspecified as i32,
                    page_size: 200,
                    page_token: std::mem::take(&mut page_token),
                },
                bearer,
                ZONE_TIMEOUT,
            )
            .map_err(|_| SchedulingError::TrainerNotFound)?;
            let page = match client.list_contracts(request).await {
                Ok(answer) => answer.into_inner(),
                // No profile: no contract anywhere.
                Err(status) if status.code() == tonic::Code::NotFound => return Ok(spans),
                Err(status) => {
                    return Err(SchedulingError::TenancyUnavailable(format!(
                        "ListContracts: {:?}",
                        status.code()
                    )));
                }
            };
            for contract in page.contracts {
                if contract.studio_id != studio_id.to_string() {
                    continue;
                }
                let accepted = matches!(
                    ContractState::try_from(contract.state),
                    Ok(ContractState::Active | ContractState::Ended)
                );
                let start = contract.start_date.as_ref().and_then(civil);
                let end = contract.end_date.as_ref().and_then(civil);
                if let (true, Some(start)) = (accepted, start) {
                    spans.push(ContractSpan { start, end });
                }
            }
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        Ok(spans)
    }

    /// The cell holding (or about to hold) a zone.
    fn cell(&self, subject: Subject) -> Arc<OnceCell<Option<chrono_tz::Tz>>> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if let Some(cached) = cache.get(&subject)
            && now.duration_since(cached.since) < ZONE_TTL
        {
            return Arc::clone(&cached.zone);
        }
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, cached| now.duration_since(cached.since) < ZONE_TTL);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        let zone = Arc::new(OnceCell::new());
        cache.insert(
            subject,
            Cached {
                zone: Arc::clone(&zone),
                since: now,
            },
        );
        zone
    }

    /// Tenancy's answer.
    async fn ask(&self, bearer: &str, trainer_id: Uuid) -> Result<chrono_tz::Tz, SchedulingError> {
        let request = forwarding_request(
            GetTrainerRequest {
                trainer_id: trainer_id.to_string(),
            },
            bearer,
            ZONE_TIMEOUT,
        )
        .map_err(|_| SchedulingError::TrainerNotFound)?;
        let mut client = self.client.clone();
        match client.get_trainer(request).await {
            Ok(answer) => Ok(answer
                .into_inner()
                .trainer
                .and_then(|trainer| trainer.time_zone.parse().ok())
                .unwrap_or(chrono_tz::UTC)),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(chrono_tz::UTC),
            Err(status) => Err(SchedulingError::TenancyUnavailable(format!(
                "GetTrainer: {:?}",
                status.code()
            ))),
        }
    }

    /// Tenancy's answer for a studio: its zone, or `None` when tenancy does
    /// not know it or it was deleted.
    async fn ask_studio(
        &self,
        bearer: &str,
        studio_id: Uuid,
    ) -> Result<Option<chrono_tz::Tz>, SchedulingError> {
        let request = forwarding_request(
            GetStudioRequest {
                studio_id: studio_id.to_string(),
            },
            bearer,
            ZONE_TIMEOUT,
        )
        .map_err(|_| SchedulingError::StudioNotFound)?;
        let mut client = self.client.clone();
        match client.get_studio(request).await {
            Ok(answer) => Ok(answer
                .into_inner()
                .studio
                .filter(|studio| studio.delete_time.is_none())
                .map(|studio| studio.time_zone.parse().unwrap_or(chrono_tz::UTC))),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => Err(SchedulingError::TenancyUnavailable(format!(
                "GetStudio: {:?}",
                status.code()
            ))),
        }
    }
}

/// The first local date (in the studio's `zone`) among `starts` that no
/// contract span covers.
pub(crate) fn first_uncovered(
    spans: &[ContractSpan],
    zone: chrono_tz::Tz,
    starts: &[chrono::DateTime<chrono::Utc>],
) -> Option<NaiveDate> {
    starts
        .iter()
        .map(|start| start.with_timezone(&zone).date_naive())
        .find(|day| !spans.iter().any(|span| span.covers(*day)))
}

/// A civil date of the wire, if valid.
fn civil(date: &fitflow_proto::google::r#type::Date) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(
        date.year,
        u32::try_from(date.month).ok()?,
        u32::try_from(date.day).ok()?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn a_contract_covers_its_first_and_last_days_and_nothing_outside() {
        let ended = ContractSpan {
            start: day("2027-03-01"),
            end: Some(day("2027-03-31")),
        };
        assert!(!ended.covers(day("2027-02-28")));
        assert!(ended.covers(day("2027-03-01")));
        assert!(ended.covers(day("2027-03-31")));
        assert!(!ended.covers(day("2027-04-01")));
        let open = ContractSpan {
            start: day("2027-03-01"),
            end: None,
        };
        assert!(open.covers(day("2099-12-31")));
        assert!(!open.covers(day("2027-02-28")));
    }

    #[test]
    fn a_session_is_dated_in_the_studios_zone_when_checked_against_its_contracts() {
        use chrono::TimeZone as _;
        // Ends on 31 March in Vancouver; 1 April 05:30 UTC is still
        // 31 March 22:30 there, so that session is covered.
        let spans = [ContractSpan {
            start: day("2027-03-01"),
            end: Some(day("2027-03-31")),
        }];
        let vancouver = chrono_tz::America::Vancouver;
        let late_evening = chrono::Utc.with_ymd_and_hms(2027, 4, 1, 5, 30, 0).unwrap();
        assert_eq!(first_uncovered(&spans, vancouver, &[late_evening]), None);
        assert_eq!(
            first_uncovered(&spans, chrono_tz::UTC, &[late_evening]),
            Some(day("2027-04-01"))
        );
        let next_day = chrono::Utc.with_ymd_and_hms(2027, 4, 2, 5, 30, 0).unwrap();
        assert_eq!(
            first_uncovered(&spans, vancouver, &[late_evening, next_day]),
            Some(day("2027-04-01"))
        );
        assert_eq!(
            first_uncovered(&[], vancouver, &[late_evening]),
            Some(day("2027-03-31"))
        );
    }
}
