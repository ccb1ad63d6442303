//! The audit service's rules, free of I/O and of the wire contract: event
//! validation, which log an event belongs to, the hash chain, partition
//! naming, list filters and page tokens. `grpc` decodes requests into the
//! drafts defined here and encodes the results; everything here is
//! unit-tested without a database or a server.

mod chain;
mod event;
mod partition;
mod query;

pub use chain::{
    BreakKind, ChainBreak, ChainLink, ChainReport, ChainVerifier, GENESIS_HASH, chain_hash,
    verify_links,
};
pub use event::{
    Action, ActorDraft, ActorRef, AdmittedBatch, Change, EventDraft, MAX_EVENTS_PER_BATCH, Purpose,
    Rejection, SPIFFE_PREFIX, StoredColumns, ValidEvent, action_name, admit_batch,
    forged_source_reason, log_for, purpose_name, rejection_reason, validate_event,
};
pub use partition::{
    month_start, partition_month, partition_months, partition_name, past_retention,
};
pub use query::{
    AUDIT_SOURCE, DEFAULT_PAGE_SIZE, EXPORT_RESOURCE_TYPE, EventFilter, ExportDraft, ExportPlan,
    FilterDraft, ListDraft, MAX_PAGE_SIZE, PageBinding, PageCursor, PageTokenKey, export_event,
    validate_export_request, validate_list_request, validate_verify_request,
};

use chrono::{DateTime, Datelike as _, Utc};
use uuid::Uuid;

/// The earliest year a stored or queried time may fall in. PostgreSQL's
/// `timestamptz` reaches back to 4713 BC and forward to 294276 AD while
/// chrono reaches further both ways, so every time from a caller is held to
/// a range both can represent with a wide margin.
const MIN_YEAR: i32 = 1;
/// The latest year a stored or queried time may fall in.
const MAX_YEAR: i32 = 9999;
/// What a caller is told when a time is outside [`MIN_YEAR`]..=[`MAX_YEAR`].
const TIME_RANGE_RULE: &str = "must be between years 1 and 9999";
/// What a caller is told when a text holds a control character.
const CONTROL_CHARACTER_RULE: &str = "must not contain control characters";

/// The table an event is stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Log {
    /// Changes and authentication events.
    Audit,
    /// Reads of protected data: view, export, print, read.
    Access,
}

impl Log {
    /// The partitioned table's name.
    pub fn table(self) -> &'static str {
        match self {
            Log::Audit => "audit_log",
            Log::Access => "access_log",
        }
    }

    /// Both logs.
    pub const ALL: [Log; 2] = [Log::Audit, Log::Access];
}

/// An enum field as received: not set, a value this build knows, or a number
/// it does not (a newer client, or garbage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Choice<T> {
    /// The field's zero value (`*_UNSPECIFIED`).
    #[default]
    Unset,
    /// A known value.
    Known(T),
    /// A number this build does not know.
    Unknown,
}

impl<T> Choice<T> {
    /// The known value, if any.
    pub fn known(self) -> Option<T> {
        match self {
            Choice::Known(value) => Some(value),
            Choice::Unset | Choice::Unknown => None,
        }
    }
}

/// A `google.protobuf.Timestamp` as received, not yet range-checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireTime {
    /// Seconds since the Unix epoch.
    pub seconds: i64,
    /// Nanoseconds within the second; valid in `0..1_000_000_000`.
    pub nanos: i32,
}

impl WireTime {
    /// The wire form of `at`.
    pub fn from_datetime(at: DateTime<Utc>) -> Self {
        Self {
            seconds: at.timestamp(),
            nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
        }
    }
}

fn optional(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

fn parse_uuid(text: &str) -> Option<Uuid> {
    Uuid::try_parse(text).ok()
}

/// The most characters in a source service name.
const MAX_SOURCE_SERVICE_CHARS: usize = 64;

fn is_service_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SOURCE_SERVICE_CHARS
        && name
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
}

/// Whether `at` lies within the years every layer can store.
fn is_storable_time(at: DateTime<Utc>) -> bool {
    (MIN_YEAR..=MAX_YEAR).contains(&at.year())
}

/// Whether `text` holds no control character at all (NUL included):
/// names, kinds and user agents.
fn is_plain_text(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

/// Whether `text` is acceptable free text: tab, CR and LF are allowed,
/// every other control character (NUL included) is not. PostgreSQL refuses
/// NUL in `text` and `jsonb`, so one would fail a whole batch's insert.
fn is_free_text(text: &str) -> bool {
    !text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n'))
}

/// `time` at microsecond precision (what PostgreSQL keeps), when it is a
/// valid timestamp at all.
fn timestamp_micros(time: &WireTime) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(time.nanos)
        .ok()
        .filter(|nanos| *nanos < 1_000_000_000)?;
    DateTime::from_timestamp(time.seconds, nanos / 1_000 * 1_000)
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Events and times shared by the domain's unit tests.

    use chrono::{DateTime, TimeZone as _, Utc};
    use fitflow_error::FieldViolation;
    use uuid::Uuid;

    use super::{Action, ActorDraft, Change, Choice, EventDraft, WireTime};

    pub(crate) fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0)
            .single()
            .expect("valid time")
    }

    pub(crate) fn update_event() -> EventDraft {
        EventDraft {
            event_id: Uuid::now_v7().to_string(),
            source_service: "clients".to_owned(),
            actor: ActorDraft::User(Uuid::new_v4().to_string()),
            action: Choice::Known(Action::Update),
            resource_type: "clients".to_owned(),
            resource_id: Uuid::new_v4().to_string(),
            changes: vec![Change {
                field: "status".to_owned(),
                old_value: "active".to_owned(),
                new_value: "archived".to_owned(),
                hashed: false,
            }],
            client_address: "203.0.113.7".to_owned(),
            user_agent: "test".to_owned(),
            purpose: Choice::Unset,
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".to_owned(),
            occur_time: Some(WireTime {
                seconds: now().timestamp() - 60,
                nanos: 123_456_789,
            }),
            tenant_id: Uuid::new_v4().to_string(),
            encoded: Vec::new(),
        }
    }

    pub(crate) fn fields(violations: &[FieldViolation]) -> Vec<&str> {
        violations.iter().map(|v| v.field.as_str()).collect()
    }
}
