//! Reading the trail: list filters, page tokens, who may read what, and the
//! EXPORT event an export leaves behind.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use fitflow_error::{FieldViolation, Violations};
use ring::{digest, hmac};
use uuid::Uuid;

use super::event::{Action, ActorDraft, Change, EventDraft, Purpose};
use super::{
    CONTROL_CHARACTER_RULE, Choice, Log, TIME_RANGE_RULE, WireTime, is_plain_text, is_service_name,
    is_storable_time, optional, parse_uuid, timestamp_micros,
};

/// Events per page of `ListEvents` when the caller does not say.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// The most events per page of `ListEvents`.
pub const MAX_PAGE_SIZE: u32 = 500;
const MAX_RESOURCE_TYPE_CHARS: usize = 100;

/// The key that authenticates page tokens (HMAC-SHA256). A token only ever
/// comes back from a caller, so without it anyone could forge a cursor.
pub struct PageTokenKey(hmac::Key);

impl PageTokenKey {
    /// A key from 32 secret bytes.
    pub fn new(secret: &[u8; 32]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }
}

impl std::fmt::Debug for PageTokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageTokenKey(redacted)")
    }
}

/// What a page token is bound to: the caller and the filter as sent, so a
/// token from another query or another caller is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageBinding([u8; 32]);

impl PageBinding {
    /// The binding of a listing of `filter` by user `caller`.
    pub fn new(caller: Uuid, filter: &FilterDraft) -> Self {
        let mut context = digest::Context::new(&digest::SHA256);
        let mut field = |bytes: &[u8]| {
            context.update(&u64::try_from(bytes.len()).unwrap_or(u64::MAX).to_be_bytes());
            context.update(bytes);
        };
        let time = |time: Option<WireTime>| {
            time.map_or_else(Vec::new, |time| {
                [
                    time.seconds.to_be_bytes().as_slice(),
                    &time.nanos.to_be_bytes(),
                ]
                .concat()
            })
        };
        let log = match filter.log {
            Choice::Unset => 0_u8,
            Choice::Known(Log::Audit) => 1,
            Choice::Known(Log::Access) => 2,
            Choice::Unknown => 3,
        };
        field(b"fitflow.audit.page.v2");
        field(caller.as_bytes());
        field(filter.resource_type.as_bytes());
        field(filter.resource_id.as_bytes());
        field(filter.actor_user_id.as_bytes());
        field(&time(filter.start_time));
        field(&time(filter.end_time));
        field(filter.source_service.as_bytes());
        field(&[log]);
        field(filter.tenant_id.as_bytes());
        let mut bound = [0; 32];
        bound.copy_from_slice(context.finish().as_ref());
        Self(bound)
    }
}

/// Where a page of `ListEvents` resumes: after the event at `(occurred_at, event_id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCursor {
    /// The last returned event's occur time.
    pub occurred_at: DateTime<Utc>,
    /// The last returned event's id.
    pub event_id: Uuid,
}

/// The version byte of page tokens.
const PAGE_TOKEN_VERSION: u8 = 2;
/// Version, occur time (microseconds), event id.
const PAGE_CURSOR_BYTES: usize = 1 + 8 + 16;

impl PageCursor {
    /// The opaque token handed to the caller: the cursor and an HMAC over it
    /// and `binding`.
    pub fn encode(&self, key: &PageTokenKey, binding: &PageBinding) -> String {
        let mut token = Vec::with_capacity(PAGE_CURSOR_BYTES + 32);
        token.push(PAGE_TOKEN_VERSION);
        token.extend_from_slice(&self.occurred_at.timestamp_micros().to_be_bytes());
        token.extend_from_slice(self.event_id.as_bytes());
        let tag = hmac::sign(&key.0, &[binding.0.as_slice(), &token].concat());
        token.extend_from_slice(tag.as_ref());
        URL_SAFE_NO_PAD.encode(token)
    }

    /// Parses a token made by [`PageCursor::encode`] with the same key and
    /// binding; `None` for anything else, including a token of another
    /// query or caller, or one holding a time outside the storable range.
    pub fn decode(token: &str, key: &PageTokenKey, binding: &PageBinding) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        if bytes.len() != PAGE_CURSOR_BYTES + 32 || bytes[0] != PAGE_TOKEN_VERSION {
            return None;
        }
        let (cursor, tag) = bytes.split_at(PAGE_CURSOR_BYTES);
        hmac::verify(&key.0, &[binding.0.as_slice(), cursor].concat(), tag).ok()?;
        let micros = i64::from_be_bytes(cursor[1..9].try_into().ok()?);
        let occurred_at =
            DateTime::from_timestamp_micros(micros).filter(|at| is_storable_time(*at))?;
        let event_id = Uuid::from_slice(&cursor[9..]).ok()?;
        Some(Self {
            occurred_at,
            event_id,
        })
    }
}

/// A validated `ListEventsRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter {
    /// Only this kind of record.
    pub resource_type: Option<String>,
    /// Only this record.
    pub resource_id: Option<Uuid>,
    /// Only events by this user.
    pub actor_user_id: Option<Uuid>,
    /// At or after.
    pub start_time: Option<DateTime<Utc>>,
    /// Before.
    pub end_time: Option<DateTime<Utc>>,
    /// Only this source.
    pub source_service: Option<String>,
    /// Only this log; both when `None`.
    pub log: Option<Log>,
    /// Only this tenant's events.
    pub tenant_id: Option<Uuid>,
    /// Events per page.
    pub page_size: u32,
    /// Resume after this event.
    pub after: Option<PageCursor>,
}

/// An `EventFilter` as received, no field checked yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterDraft {
    /// Only this kind of record, or empty.
    pub resource_type: String,
    /// Only this record, or empty.
    pub resource_id: String,
    /// Only events by this user, or empty.
    pub actor_user_id: String,
    /// At or after.
    pub start_time: Option<WireTime>,
    /// Before.
    pub end_time: Option<WireTime>,
    /// Only this source, or empty.
    pub source_service: String,
    /// Only this log.
    pub log: Choice<Log>,
    /// Only this tenant's events, or empty.
    pub tenant_id: String,
}

/// A `ListEventsRequest` as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListDraft {
    /// Which events.
    pub filter: FilterDraft,
    /// Events per page as asked; 0 for the default.
    pub page_size: i32,
    /// A previous page's token, or empty.
    pub page_token: String,
}

/// An `ExportEventsRequest` as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportDraft {
    /// Which events.
    pub filter: FilterDraft,
    /// Why the caller exports.
    pub purpose: Choice<Purpose>,
}

/// Validates the shared filter fields into an [`EventFilter`] without paging.
fn validate_filter(fields: &FilterDraft, violations: &mut Violations) -> EventFilter {
    let resource_type = optional(&fields.resource_type).map(str::to_owned);
    violations.check(
        resource_type
            .as_ref()
            .is_none_or(|kind| kind.chars().count() <= MAX_RESOURCE_TYPE_CHARS),
        "filter.resource_type",
        "must be at most 100 characters",
    );
    violations.check(
        is_plain_text(&fields.resource_type),
        "filter.resource_type",
        CONTROL_CHARACTER_RULE,
    );
    let resource_id = optional(&fields.resource_id).and_then(|text| {
        let parsed = parse_uuid(text);
        violations.check(parsed.is_some(), "filter.resource_id", "must be a UUID");
        parsed
    });
    violations.check(
        fields.resource_id.is_empty() || resource_type.is_some(),
        "filter.resource_id",
        "requires resource_type",
    );
    let actor_user_id = optional(&fields.actor_user_id).and_then(|text| {
        let parsed = parse_uuid(text);
        violations.check(parsed.is_some(), "filter.actor_user_id", "must be a UUID");
        parsed
    });
    let mut time = |field: &str, value: Option<&WireTime>| {
        value.and_then(|time| match timestamp_micros(time) {
            Some(at) if is_storable_time(at) => Some(at),
            Some(_) => {
                violations.add(field, TIME_RANGE_RULE);
                None
            }
            None => {
                violations.add(field, "must be a valid timestamp");
                None
            }
        })
    };
    let start_time = time("filter.start_time", fields.start_time.as_ref());
    let end_time = time("filter.end_time", fields.end_time.as_ref());
    if let (Some(start), Some(end)) = (start_time, end_time) {
        violations.check(
            start < end,
            "filter.end_time",
            "must be after filter.start_time",
        );
    }
    let source_service = optional(&fields.source_service).map(str::to_owned);
    violations.check(
        source_service.as_deref().is_none_or(is_service_name),
        "filter.source_service",
        "must be a service name",
    );
    let log = match fields.log {
        Choice::Unset => None,
        Choice::Known(log) => Some(log),
        Choice::Unknown => {
            violations.add("filter.log", "must be a known log");
            None
        }
    };
    let tenant_id = optional(&fields.tenant_id).and_then(|text| {
        let parsed = parse_uuid(text);
        violations.check(parsed.is_some(), "filter.tenant_id", "must be a UUID");
        parsed
    });
    EventFilter {
        resource_type,
        resource_id,
        actor_user_id,
        start_time,
        end_time,
        source_service,
        log,
        tenant_id,
        page_size: DEFAULT_PAGE_SIZE,
        after: None,
    }
}

/// Validates a `ListEventsRequest` into an [`EventFilter`]; its page token
/// must have been made with `key` for the same `binding`.
pub fn validate_list_request(
    request: &ListDraft,
    key: &PageTokenKey,
    binding: &PageBinding,
) -> Result<EventFilter, Vec<FieldViolation>> {
    let mut violations = Violations::new();
    let filter = validate_filter(&request.filter, &mut violations);
    let page_size = match u32::try_from(request.page_size) {
        Ok(0) => DEFAULT_PAGE_SIZE,
        Ok(size) => size.min(MAX_PAGE_SIZE),
        Err(_) => {
            violations.add("page_size", "must not be negative");
            DEFAULT_PAGE_SIZE
        }
    };
    let after = optional(&request.page_token).and_then(|token| {
        let parsed = PageCursor::decode(token, key, binding);
        violations.check(
            parsed.is_some(),
            "page_token",
            "is not a token this service issued",
        );
        parsed
    });
    match violations.into_result() {
        Ok(()) => Ok(EventFilter {
            page_size,
            after,
            ..filter
        }),
        Err(error) => Err(error.violations),
    }
}

/// Validates a `VerifyChainRequest`'s `source_service`: the chain to
/// verify, or `None` for every chain.
pub fn validate_verify_request(
    source_service: &str,
) -> Result<Option<String>, Vec<FieldViolation>> {
    let source = optional(source_service);
    if source.is_some_and(|source| !is_service_name(source)) {
        return Err(vec![FieldViolation {
            field: "source_service".to_owned(),
            description: "must be a service name".to_owned(),
        }]);
    }
    Ok(source.map(str::to_owned))
}

/// A validated `ExportEventsRequest`: what to export and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportPlan {
    /// The events to export; its page size is the chunk size.
    pub filter: EventFilter,
    /// Why the caller exports.
    pub purpose: Purpose,
}

/// Validates an `ExportEventsRequest` into an [`ExportPlan`].
pub fn validate_export_request(request: &ExportDraft) -> Result<ExportPlan, Vec<FieldViolation>> {
    let mut violations = Violations::new();
    let filter = validate_filter(&request.filter, &mut violations);
    let purpose = request.purpose.known();
    violations.check(purpose.is_some(), "purpose", "must be a known purpose");
    match (violations.into_result(), purpose) {
        (Ok(()), Some(purpose)) => Ok(ExportPlan {
            filter: EventFilter {
                page_size: MAX_PAGE_SIZE,
                ..filter
            },
            purpose,
        }),
        (Err(error), _) => Err(error.violations),
        // Unreachable: a missing purpose recorded a violation.
        (Ok(()), None) => Err(vec![FieldViolation {
            field: "purpose".to_owned(),
            description: "must be a known purpose".to_owned(),
        }]),
    }
}

/// The audit service's own name, which names the chain of its own events.
pub const AUDIT_SOURCE: &str = "audit";
/// The resource type of an export that names no single record.
pub const EXPORT_RESOURCE_TYPE: &str = "audit_log";

/// The EXPORT access event the audit service records, before streaming, for
/// an export of `plan` by user `actor`: the exported record (or the export
/// itself, by `export_id`, when the filter names no record), the tenant, the
/// purpose and, as changes, the filter (ids and times only, never PHI).
pub fn export_event(
    plan: &ExportPlan,
    actor: Uuid,
    export_id: Uuid,
    now: DateTime<Utc>,
) -> EventDraft {
    let filter = &plan.filter;
    let (resource_type, resource_id) = match (&filter.resource_type, filter.resource_id) {
        (Some(kind), Some(id)) => (kind.clone(), id),
        _ => (EXPORT_RESOURCE_TYPE.to_owned(), export_id),
    };
    let mut changes = Vec::new();
    let mut describe = |field: &str, value: Option<String>| {
        if let Some(value) = value {
            changes.push(Change {
                field: format!("filter.{field}"),
                new_value: value,
                ..Change::default()
            });
        }
    };
    describe("resource_type", filter.resource_type.clone());
    describe("resource_id", filter.resource_id.map(|id| id.to_string()));
    describe(
        "actor_user_id",
        filter.actor_user_id.map(|id| id.to_string()),
    );
    describe("start_time", filter.start_time.map(|at| at.to_rfc3339()));
    describe("end_time", filter.end_time.map(|at| at.to_rfc3339()));
    describe("source_service", filter.source_service.clone());
    describe("log", filter.log.map(|log| log.table().to_owned()));
    describe("export_id", Some(export_id.to_string()));
    EventDraft {
        event_id: Uuid::now_v7().to_string(),
        source_service: AUDIT_SOURCE.to_owned(),
        actor: ActorDraft::User(actor.to_string()),
        action: Choice::Known(Action::Export),
        resource_type,
        resource_id: resource_id.to_string(),
        changes,
        client_address: String::new(),
        user_agent: String::new(),
        purpose: Choice::Known(plan.purpose),
        trace_id: String::new(),
        occur_time: Some(WireTime::from_datetime(now)),
        tenant_id: filter
            .tenant_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        encoded: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_support::{fields, now};
    use crate::domain::{ActorRef, validate_event};

    fn key() -> PageTokenKey {
        PageTokenKey::new(&[7; 32])
    }

    fn binding() -> PageBinding {
        PageBinding::new(Uuid::nil(), &FilterDraft::default())
    }

    #[test]
    fn a_page_token_round_trips_and_garbage_is_refused() {
        let cursor = PageCursor {
            occurred_at: now(),
            event_id: Uuid::now_v7(),
        };
        assert_eq!(
            PageCursor::decode(&cursor.encode(&key(), &binding()), &key(), &binding()),
            Some(cursor)
        );
        assert_eq!(PageCursor::decode("garbage!", &key(), &binding()), None);
    }

    #[test]
    fn a_resource_id_filter_requires_a_resource_type_and_page_size_is_capped() {
        let request = ListDraft {
            filter: FilterDraft {
                resource_id: Uuid::new_v4().to_string(),
                ..Default::default()
            },
            page_size: -1,
            ..Default::default()
        };
        let violations = validate_list_request(&request, &key(), &binding()).expect_err("invalid");
        assert_eq!(fields(&violations), ["filter.resource_id", "page_size"]);
        let request = ListDraft {
            page_size: 10_000,
            ..Default::default()
        };
        assert_eq!(
            validate_list_request(&request, &key(), &binding())
                .expect("valid")
                .page_size,
            MAX_PAGE_SIZE
        );
        let defaulted =
            validate_list_request(&ListDraft::default(), &key(), &binding()).expect("valid");
        assert_eq!(defaulted.page_size, DEFAULT_PAGE_SIZE);
    }

    #[test]
    fn an_export_needs_a_purpose_and_a_known_log() {
        let request = ExportDraft {
            filter: FilterDraft {
                log: Choice::Unknown,
                tenant_id: "nope".to_owned(),
                ..Default::default()
            },
            ..Default::default()
        };
        let violations = validate_export_request(&request).expect_err("invalid");
        assert_eq!(
            fields(&violations),
            ["filter.log", "filter.tenant_id", "purpose"]
        );
        let plan = validate_export_request(&ExportDraft {
            filter: FilterDraft {
                log: Choice::Known(Log::Access),
                ..Default::default()
            },
            purpose: Choice::Known(Purpose::Operations),
        })
        .expect("valid");
        assert_eq!(plan.filter.log, Some(Log::Access));
        assert_eq!(plan.filter.page_size, MAX_PAGE_SIZE);
    }

    #[test]
    fn the_export_event_is_a_valid_access_event_naming_the_caller_record_and_filter() {
        let (actor, client, export_id) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let plan = validate_export_request(&ExportDraft {
            filter: FilterDraft {
                resource_type: "clients".to_owned(),
                resource_id: client.to_string(),
                log: Choice::Known(Log::Access),
                ..Default::default()
            },
            purpose: Choice::Known(Purpose::Treatment),
        })
        .expect("valid");
        let event = export_event(&plan, actor, export_id, now());
        let valid = validate_event(&event, 0, now()).expect("a valid event");
        assert_eq!(valid.log(), Log::Access);
        assert_eq!(valid.action, Action::Export);
        assert_eq!(valid.actor, ActorRef::User(actor));
        assert_eq!(valid.resource_id, client);
        assert_eq!(valid.purpose, Some(Purpose::Treatment));
        assert_eq!(valid.source_service, AUDIT_SOURCE);
        let described: Vec<_> = valid.changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            described,
            [
                "filter.resource_type",
                "filter.resource_id",
                "filter.log",
                "filter.export_id"
            ]
        );

        let unscoped = validate_export_request(&ExportDraft {
            purpose: Choice::Known(Purpose::Operations),
            ..Default::default()
        })
        .expect("valid");
        let event = export_event(&unscoped, actor, export_id, now());
        assert_eq!(event.resource_type, EXPORT_RESOURCE_TYPE);
        assert_eq!(event.resource_id, export_id.to_string());
    }

    #[test]
    fn a_page_token_is_refused_for_another_filter_another_caller_or_another_key() {
        let cursor = PageCursor {
            occurred_at: now(),
            event_id: Uuid::now_v7(),
        };
        let caller = Uuid::new_v4();
        let filter = FilterDraft {
            resource_type: "clients".to_owned(),
            ..Default::default()
        };
        let bound = PageBinding::new(caller, &filter);
        let token = cursor.encode(&key(), &bound);
        assert_eq!(PageCursor::decode(&token, &key(), &bound), Some(cursor));
        let other_filter = FilterDraft {
            resource_type: "invoices".to_owned(),
            ..Default::default()
        };
        let other_query = PageBinding::new(caller, &other_filter);
        assert_eq!(PageCursor::decode(&token, &key(), &other_query), None);
        let other_caller = PageBinding::new(Uuid::new_v4(), &filter);
        assert_eq!(PageCursor::decode(&token, &key(), &other_caller), None);
        let restarted = PageTokenKey::new(&[8; 32]);
        assert_eq!(PageCursor::decode(&token, &restarted, &bound), None);
    }

    #[test]
    fn a_forged_page_token_with_an_extreme_time_is_refused() {
        let forged = URL_SAFE_NO_PAD.encode(format!("v1:{}:{}", i64::MIN, Uuid::nil()));
        assert_eq!(PageCursor::decode(&forged, &key(), &binding()), None);
        let mut raw = vec![PAGE_TOKEN_VERSION];
        raw.extend_from_slice(&i64::MIN.to_be_bytes());
        raw.extend_from_slice(Uuid::nil().as_bytes());
        raw.extend_from_slice(&[0; 32]);
        let unsigned = URL_SAFE_NO_PAD.encode(raw);
        assert_eq!(PageCursor::decode(&unsigned, &key(), &binding()), None);
    }

    #[test]
    fn a_filter_with_nul_or_a_time_outside_years_1_to_9999_names_the_request_field() {
        let request = ListDraft {
            filter: FilterDraft {
                resource_type: "clients\0".to_owned(),
                start_time: Some(WireTime {
                    seconds: 400_000_000_000,
                    nanos: 0,
                }),
                end_time: Some(WireTime {
                    seconds: -220_000_000_000,
                    nanos: 0,
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let violations = validate_list_request(&request, &key(), &binding()).expect_err("invalid");
        assert_eq!(
            fields(&violations),
            [
                "filter.resource_type",
                "filter.start_time",
                "filter.end_time"
            ]
        );
    }
}
