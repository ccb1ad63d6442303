//! Events: what a source sends, the rules an event must pass before it is
//! stored, and the columns a stored event fills.

use std::net::IpAddr;

use chrono::{DateTime, TimeDelta, Utc};
use fitflow_error::{FieldViolation, Violations};
use uuid::Uuid;

use super::{
    CONTROL_CHARACTER_RULE, Choice, Log, MAX_SOURCE_SERVICE_CHARS, TIME_RANGE_RULE, WireTime,
    is_free_text, is_plain_text, is_service_name, is_storable_time, optional, parse_uuid,
    timestamp_micros,
};

/// At most this many events in one `IngestRequest`.
pub const MAX_EVENTS_PER_BATCH: usize = 1_000;
const MAX_RESOURCE_TYPE_CHARS: usize = 100;
const MAX_CHANGES_PER_EVENT: usize = 256;
const MAX_FIELD_NAME_CHARS: usize = 100;
const MAX_FIELD_VALUE_CHARS: usize = 1_024;
const MAX_USER_AGENT_CHARS: usize = 512;
const MAX_SERVICE_ACTOR_CHARS: usize = 128;
/// Clock skew tolerated for events stamped in the future.
const MAX_FUTURE_SKEW: TimeDelta = TimeDelta::hours(24);
/// The SPIFFE prefix of every FitFlow workload identity.
pub const SPIFFE_PREFIX: &str = "spiffe://fitflow/";

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// A record was created.
    Create,
    /// A record was read.
    Read,
    /// A record was changed.
    Update,
    /// A record was deleted.
    Delete,
    /// Protected data was shown to a person.
    View,
    /// Data left the system as a file or stream.
    Export,
    /// Data was printed.
    Print,
    /// An authentication event.
    Authenticate,
}

/// Why protected data was used (HIPAA's purposes of use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Providing training or care.
    Treatment,
    /// Billing and payment.
    Payment,
    /// Running the practice.
    Operations,
}

/// One changed field, as sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Change {
    /// The column or field name.
    pub field: String,
    /// The old value, or its keyed hash when `hashed`.
    pub old_value: String,
    /// The new value, or its keyed hash when `hashed`.
    pub new_value: String,
    /// Whether the values are keyed hashes.
    pub hashed: bool,
}

/// Who acted, as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActorDraft {
    /// No actor was sent.
    Missing,
    /// A user id, not yet parsed.
    User(String),
    /// A SPIFFE id, not yet checked.
    Service(String),
}

/// An event as a source sent it, no field checked yet.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDraft {
    /// The idempotency key, within the source.
    pub event_id: String,
    /// The source service.
    pub source_service: String,
    /// Who acted.
    pub actor: ActorDraft,
    /// What was done.
    pub action: Choice<Action>,
    /// The kind of record.
    pub resource_type: String,
    /// The record.
    pub resource_id: String,
    /// The changed fields.
    pub changes: Vec<Change>,
    /// The end user's IP address, or empty.
    pub client_address: String,
    /// The end user's user agent, or empty.
    pub user_agent: String,
    /// Why the data was used.
    pub purpose: Choice<Purpose>,
    /// The W3C trace id, or empty.
    pub trace_id: String,
    /// When it happened.
    pub occur_time: Option<WireTime>,
    /// The tenant whose data this is, or empty.
    pub tenant_id: String,
    /// The event as encoded on the wire, kept so `ListEvents` returns it as sent.
    pub encoded: Vec<u8>,
}

/// Who acted, once validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActorRef {
    /// A user, by id.
    User(Uuid),
    /// A FitFlow service, by SPIFFE id (`spiffe://fitflow/<name>`).
    Service(String),
}

/// An event that passed validation, with its fields parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidEvent {
    /// The idempotency key, within the source.
    pub event_id: Uuid,
    /// The source service, which names the event's chain.
    pub source_service: String,
    /// Who acted.
    pub actor: ActorRef,
    /// What was done.
    pub action: Action,
    /// The kind of record.
    pub resource_type: String,
    /// The record.
    pub resource_id: Uuid,
    /// The changed fields as sent.
    pub changes: Vec<Change>,
    /// The end user's address.
    pub client_address: Option<IpAddr>,
    /// The end user's user agent.
    pub user_agent: Option<String>,
    /// Why the data was used.
    pub purpose: Option<Purpose>,
    /// The W3C trace id.
    pub trace_id: Option<String>,
    /// When it happened, at microsecond precision (what PostgreSQL keeps).
    pub occurred_at: DateTime<Utc>,
    /// The tenant whose data this is.
    pub tenant_id: Option<Uuid>,
    /// The event as encoded on the wire, kept so `ListEvents` can return it.
    pub encoded: Vec<u8>,
}

impl ValidEvent {
    /// The log this event belongs in.
    pub fn log(&self) -> Log {
        log_for(self.action)
    }

    /// The values the event's row holds in its queryable columns.
    pub fn columns(&self) -> StoredColumns {
        let (actor_user_id, actor_service) = match &self.actor {
            ActorRef::User(id) => (Some(*id), None),
            ActorRef::Service(name) => (None, Some(name.clone())),
        };
        StoredColumns {
            event_id: self.event_id,
            occurred_at: self.occurred_at,
            source_service: self.source_service.clone(),
            action: action_name(self.action).to_owned(),
            actor_user_id,
            actor_service,
            tenant_id: self.tenant_id,
            resource_type: self.resource_type.clone(),
            resource_id: self.resource_id,
            changes: changes_json(&self.changes),
            client_address: self.client_address,
            user_agent: self.user_agent.clone(),
            purpose: self.purpose.map(|purpose| purpose_name(purpose).to_owned()),
            trace_id: self.trace_id.clone(),
        }
    }
}

/// The queryable columns of a stored row, derived from its event. Chain
/// verification checks that they still match the hashed event.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredColumns {
    /// `event_id`.
    pub event_id: Uuid,
    /// `occurred_at`.
    pub occurred_at: DateTime<Utc>,
    /// `source_service`.
    pub source_service: String,
    /// `action`, lowercase.
    pub action: String,
    /// `actor_user_id`.
    pub actor_user_id: Option<Uuid>,
    /// `actor_service`.
    pub actor_service: Option<String>,
    /// `tenant_id`.
    pub tenant_id: Option<Uuid>,
    /// `resource_type`.
    pub resource_type: String,
    /// `resource_id`.
    pub resource_id: Uuid,
    /// `changes`: `[{field, old_value, new_value, hashed}]`.
    pub changes: serde_json::Value,
    /// `client_address`.
    pub client_address: Option<IpAddr>,
    /// `user_agent`.
    pub user_agent: Option<String>,
    /// `purpose`, lowercase.
    pub purpose: Option<String>,
    /// `trace_id`.
    pub trace_id: Option<String>,
}

/// The log an action's events belong in.
pub fn log_for(action: Action) -> Log {
    match action {
        Action::Read | Action::View | Action::Export | Action::Print => Log::Access,
        Action::Create | Action::Update | Action::Delete | Action::Authenticate => Log::Audit,
    }
}

/// The stored name of an action.
pub fn action_name(action: Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Read => "read",
        Action::Update => "update",
        Action::Delete => "delete",
        Action::View => "view",
        Action::Export => "export",
        Action::Print => "print",
        Action::Authenticate => "authenticate",
    }
}

/// The stored name of a purpose of use.
pub fn purpose_name(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Treatment => "treatment",
        Purpose::Payment => "payment",
        Purpose::Operations => "operations",
    }
}

fn changes_json(changes: &[Change]) -> serde_json::Value {
    changes
        .iter()
        .map(|change| {
            serde_json::json!({
                "field": change.field,
                "old_value": change.old_value,
                "new_value": change.new_value,
                "hashed": change.hashed,
            })
        })
        .collect()
}

/// Which rules an event is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rules {
    /// A new event at ingestion, received at this time.
    Ingest(DateTime<Utc>),
    /// An event read back from storage for chain verification: it passed
    /// the rules in force when it was stored, which may have been looser
    /// than today's, so only what is needed to parse it is checked.
    Stored,
}

/// Checks every field of `event` (at position `index` of its batch). On
/// failure returns the violations, which name fields, never their values.
pub fn validate_event(
    event: &EventDraft,
    index: usize,
    now: DateTime<Utc>,
) -> Result<ValidEvent, Vec<FieldViolation>> {
    check_event(event, index, Rules::Ingest(now))
}

/// Parses a stored event back for chain verification; `None` when it no
/// longer parses (the row was tampered with).
pub(crate) fn parse_stored_event(event: &EventDraft) -> Option<ValidEvent> {
    check_event(event, 0, Rules::Stored).ok()
}

fn check_event(
    event: &EventDraft,
    index: usize,
    rules: Rules,
) -> Result<ValidEvent, Vec<FieldViolation>> {
    let path = |field: &str| format!("events[{index}].{field}");
    let mut violations = Violations::new();

    let event_id = parse_uuid(&event.event_id);
    violations.check(event_id.is_some(), &path("event_id"), "must be a UUID");

    let source_ok = !event.source_service.is_empty()
        && event.source_service.chars().count() <= MAX_SOURCE_SERVICE_CHARS
        && is_service_name(&event.source_service);
    violations.check(
        source_ok,
        &path("source_service"),
        "must be a service name of 1 to 64 lowercase letters, digits or dashes",
    );

    let action = event.action.known();
    violations.check(action.is_some(), &path("action"), "must be a known action");

    let resource_type_ok = !event.resource_type.trim().is_empty()
        && event.resource_type.chars().count() <= MAX_RESOURCE_TYPE_CHARS;
    violations.check(
        resource_type_ok,
        &path("resource_type"),
        "must be 1 to 100 characters",
    );
    let hostile = matches!(rules, Rules::Ingest(_));
    violations.check(
        !hostile || is_plain_text(&event.resource_type),
        &path("resource_type"),
        CONTROL_CHARACTER_RULE,
    );

    let resource_id = parse_uuid(&event.resource_id);
    violations.check(
        resource_id.is_some(),
        &path("resource_id"),
        "must be a UUID",
    );

    let actor = match &event.actor {
        ActorDraft::User(user_id) => {
            let parsed = parse_uuid(user_id).map(ActorRef::User);
            violations.check(parsed.is_some(), &path("actor.user_id"), "must be a UUID");
            parsed
        }
        ActorDraft::Service(service) => {
            let ok = service.chars().count() <= MAX_SERVICE_ACTOR_CHARS
                && service
                    .strip_prefix(SPIFFE_PREFIX)
                    .is_some_and(is_service_name);
            violations.check(
                ok,
                &path("actor.service"),
                "must be a FitFlow SPIFFE id (spiffe://fitflow/<service>)",
            );
            ok.then(|| ActorRef::Service(service.clone()))
        }
        ActorDraft::Missing => {
            violations.add(path("actor"), "is required");
            None
        }
    };

    let occurred_at = match &event.occur_time {
        Some(time) => match (timestamp_micros(time), rules) {
            (Some(at), Rules::Ingest(_)) if !is_storable_time(at) => {
                violations.add(path("occur_time"), TIME_RANGE_RULE);
                None
            }
            (Some(at), Rules::Ingest(now)) if !not_in_future(at, now) => {
                violations.add(path("occur_time"), "must not be in the future");
                None
            }
            (Some(at), _) => Some(at),
            (None, _) => {
                violations.add(path("occur_time"), "must be a valid timestamp");
                None
            }
        },
        None => {
            violations.add(path("occur_time"), "is required");
            None
        }
    };

    let purpose = match event.purpose {
        Choice::Unset => None,
        Choice::Known(purpose) => Some(purpose),
        Choice::Unknown => {
            violations.add(path("purpose"), "must be a known purpose");
            None
        }
    };
    if action.is_some_and(|action| log_for(action) == Log::Access) && purpose.is_none() {
        violations.add(path("purpose"), "is required for access events");
    }

    violations.check(
        event.changes.len() <= MAX_CHANGES_PER_EVENT,
        &path("changes"),
        "must hold at most 256 changes",
    );
    for (change_index, change) in event.changes.iter().enumerate() {
        let field_ok =
            !change.field.is_empty() && change.field.chars().count() <= MAX_FIELD_NAME_CHARS;
        violations.check(
            field_ok,
            &path(&format!("changes[{change_index}].field")),
            "must be 1 to 100 characters",
        );
        let values_ok = change.old_value.chars().count() <= MAX_FIELD_VALUE_CHARS
            && change.new_value.chars().count() <= MAX_FIELD_VALUE_CHARS;
        violations.check(
            values_ok,
            &path(&format!("changes[{change_index}]")),
            "values must be at most 1024 characters",
        );
        violations.check(
            !hostile || is_plain_text(&change.field),
            &path(&format!("changes[{change_index}].field")),
            CONTROL_CHARACTER_RULE,
        );
        violations.check(
            !hostile || is_free_text(&change.old_value),
            &path(&format!("changes[{change_index}].old_value")),
            "must not contain control characters other than tab, CR and LF",
        );
        violations.check(
            !hostile || is_free_text(&change.new_value),
            &path(&format!("changes[{change_index}].new_value")),
            "must not contain control characters other than tab, CR and LF",
        );
    }

    let client_address = optional(&event.client_address).and_then(|text| {
        let parsed = text.parse::<IpAddr>().ok();
        violations.check(
            parsed.is_some(),
            &path("client_address"),
            "must be an IP address",
        );
        parsed
    });
    violations.check(
        event.user_agent.chars().count() <= MAX_USER_AGENT_CHARS,
        &path("user_agent"),
        "must be at most 512 characters",
    );
    violations.check(
        !hostile || is_plain_text(&event.user_agent),
        &path("user_agent"),
        CONTROL_CHARACTER_RULE,
    );
    let trace_id_ok = event.trace_id.is_empty() || is_w3c_trace_id(&event.trace_id);
    violations.check(
        trace_id_ok,
        &path("trace_id"),
        "must be a W3C trace id (32 lowercase hex digits, not all zero)",
    );
    let tenant_id = optional(&event.tenant_id).and_then(|text| {
        let parsed = parse_uuid(text);
        violations.check(parsed.is_some(), &path("tenant_id"), "must be a UUID");
        parsed
    });

    if let Err(error) = violations.into_result() {
        return Err(error.violations);
    }
    match (event_id, action, resource_id, actor, occurred_at) {
        (Some(event_id), Some(action), Some(resource_id), Some(actor), Some(occurred_at)) => {
            Ok(ValidEvent {
                event_id,
                source_service: event.source_service.clone(),
                actor,
                action,
                resource_type: event.resource_type.clone(),
                resource_id,
                changes: event.changes.clone(),
                client_address,
                user_agent: optional(&event.user_agent).map(str::to_owned),
                purpose,
                trace_id: optional(&event.trace_id).map(str::to_owned),
                occurred_at,
                tenant_id,
                encoded: event.encoded.clone(),
            })
        }
        // Unreachable: each None above recorded a violation.
        _ => Err(vec![FieldViolation {
            field: format!("events[{index}]"),
            description: "is invalid".to_owned(),
        }]),
    }
}

/// An event refused at ingestion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The event's id as sent (at most 64 characters of it).
    pub event_id: String,
    /// Its index in the batch.
    pub index: u32,
    /// What is wrong with it: field paths and rules, never values.
    pub reason: String,
}

/// A batch sorted into the events to store and the events refused.
#[derive(Debug, Default)]
pub struct AdmittedBatch {
    /// Valid events, in batch order.
    pub valid: Vec<ValidEvent>,
    /// Refused events, with index and reason.
    pub rejected: Vec<Rejection>,
}

/// Validates every event of a batch on its own. When the caller's mTLS
/// identity `peer` is known, an event naming another source service, or
/// another service as its actor, is refused, so one service cannot forge
/// another's events. A batch of more than [`MAX_EVENTS_PER_BATCH`] events is
/// refused whole.
pub fn admit_batch(
    events: &[EventDraft],
    peer: Option<&str>,
    now: DateTime<Utc>,
) -> Result<AdmittedBatch, Vec<FieldViolation>> {
    if events.len() > MAX_EVENTS_PER_BATCH {
        return Err(vec![FieldViolation {
            field: "events".to_owned(),
            description: "must hold at most 1000 events".to_owned(),
        }]);
    }
    let mut batch = AdmittedBatch::default();
    for (index, event) in events.iter().enumerate() {
        let reject = |reason: String| Rejection {
            event_id: event.event_id.chars().take(64).collect(),
            index: u32::try_from(index).unwrap_or(u32::MAX),
            reason,
        };
        match validate_event(event, index, now) {
            Ok(valid) if peer.is_some_and(|peer| peer != valid.source_service) => {
                batch.rejected.push(reject(forged_source_reason(index)));
            }
            Ok(valid) if peer.is_some_and(|peer| !actor_may_be(&valid.actor, peer)) => {
                batch.rejected.push(reject(format!(
                    "events[{index}].actor.service must be the calling service"
                )));
            }
            Ok(valid) => batch.valid.push(valid),
            Err(violations) => batch.rejected.push(reject(rejection_reason(&violations))),
        }
    }
    Ok(batch)
}

/// Whether `actor` may appear in an event sent by `peer`: any user, or the
/// peer itself as a service.
fn actor_may_be(actor: &ActorRef, peer: &str) -> bool {
    match actor {
        ActorRef::User(_) => true,
        ActorRef::Service(spiffe_id) => spiffe_id.strip_prefix(SPIFFE_PREFIX) == Some(peer),
    }
}

/// One line naming every violation, for `RejectedEvent.reason`.
pub fn rejection_reason(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|violation| format!("{} {}", violation.field, violation.description))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The reason given when an event claims another service as its source.
pub fn forged_source_reason(index: usize) -> String {
    format!("events[{index}].source_service must be the calling service")
}

fn not_in_future(at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now.checked_add_signed(MAX_FUTURE_SKEW)
        .is_none_or(|latest| at <= latest)
}

fn is_w3c_trace_id(text: &str) -> bool {
    text.len() == 32
        && text
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
        && text.bytes().any(|byte| byte != b'0')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_support::{fields, now, update_event};

    #[test]
    fn a_complete_update_event_is_valid_and_goes_to_the_audit_log() {
        let valid = validate_event(&update_event(), 0, now()).expect("valid");
        assert_eq!(valid.log(), Log::Audit);
        assert_eq!(valid.occurred_at.timestamp_subsec_nanos(), 123_456_000);
    }

    #[test]
    fn an_event_with_bad_ids_and_no_actor_names_every_field() {
        let mut event = update_event();
        event.event_id = "not-a-uuid".to_owned();
        event.resource_id = String::new();
        event.actor = ActorDraft::Missing;
        event.action = Choice::Unset;
        let violations = validate_event(&event, 3, now()).expect_err("invalid");
        assert_eq!(
            fields(&violations),
            [
                "events[3].event_id",
                "events[3].action",
                "events[3].resource_id",
                "events[3].actor"
            ]
        );
    }

    #[test]
    fn an_access_event_requires_a_purpose() {
        let mut event = update_event();
        event.action = Choice::Known(Action::View);
        let violations = validate_event(&event, 0, now()).expect_err("invalid");
        assert_eq!(fields(&violations), ["events[0].purpose"]);
        event.purpose = Choice::Known(Purpose::Treatment);
        let valid = validate_event(&event, 0, now()).expect("valid");
        assert_eq!(valid.log(), Log::Access);
    }

    #[test]
    fn a_service_actor_must_be_a_fitflow_spiffe_id() {
        let mut event = update_event();
        event.actor = ActorDraft::Service("spiffe://evil/billing".to_owned());
        assert_eq!(
            fields(&validate_event(&event, 0, now()).expect_err("invalid")),
            ["events[0].actor.service"]
        );
        event.actor = ActorDraft::Service("spiffe://fitflow/billing".to_owned());
        assert!(validate_event(&event, 0, now()).is_ok());
    }

    #[test]
    fn oversized_values_and_future_times_are_rejected_without_echoing_values() {
        let mut event = update_event();
        event.changes[0].new_value = "x".repeat(MAX_FIELD_VALUE_CHARS + 1);
        event.occur_time = Some(WireTime {
            seconds: now().timestamp() + 3 * 86_400,
            nanos: 0,
        });
        event.source_service = "a".repeat(65);
        let violations = validate_event(&event, 0, now()).expect_err("invalid");
        assert_eq!(
            fields(&violations),
            [
                "events[0].source_service",
                "events[0].occur_time",
                "events[0].changes[0]"
            ]
        );
        assert!(!rejection_reason(&violations).contains("xxx"));
    }

    #[test]
    fn an_event_naming_another_source_than_the_peer_is_rejected_alone() {
        let mut forged = update_event();
        forged.source_service = "billing".to_owned();
        let mut invalid = update_event();
        invalid.resource_id = "x".to_owned();
        let events = [update_event(), forged, invalid];
        let batch = admit_batch(&events, Some("clients"), now()).expect("small batch");
        assert_eq!(batch.valid.len(), 1);
        let rejected: Vec<_> = batch
            .rejected
            .iter()
            .map(|r| (r.index, r.reason.as_str()))
            .collect();
        assert_eq!(
            rejected,
            [
                (1, "events[1].source_service must be the calling service"),
                (2, "events[2].resource_id must be a UUID")
            ]
        );
        let unchecked = admit_batch(&events, None, now()).expect("small batch");
        assert_eq!(unchecked.valid.len(), 2);
    }

    #[test]
    fn a_batch_of_more_than_a_thousand_events_is_refused_whole() {
        let events = vec![update_event(); MAX_EVENTS_PER_BATCH + 1];
        assert!(admit_batch(&events, None, now()).is_err());
    }

    #[test]
    fn nul_and_control_characters_are_refused_in_every_text_field_but_free_text_keeps_tabs_and_newlines()
     {
        let mut event = update_event();
        event.resource_type = "clients\0".to_owned();
        event.changes[0].field = "sta\u{1b}tus".to_owned();
        event.changes[0].new_value = "arch\0ived".to_owned();
        event.user_agent = "agent\u{7}".to_owned();
        event.client_address = "203.0.113.7\0".to_owned();
        let violations = validate_event(&event, 0, now()).expect_err("invalid");
        assert_eq!(
            fields(&violations),
            [
                "events[0].resource_type",
                "events[0].changes[0].field",
                "events[0].changes[0].new_value",
                "events[0].client_address",
                "events[0].user_agent"
            ]
        );

        let mut free_text = update_event();
        free_text.changes[0].new_value = "line one\r\n\tline two".to_owned();
        assert!(validate_event(&free_text, 0, now()).is_ok());
    }

    #[test]
    fn an_occur_time_outside_years_1_to_9999_is_refused() {
        let mut event = update_event();
        event.occur_time = Some(WireTime {
            seconds: -220_000_000_000,
            nanos: 0,
        });
        let violations = validate_event(&event, 0, now()).expect_err("year -5000");
        assert_eq!(fields(&violations), ["events[0].occur_time"]);
        assert_eq!(
            rejection_reason(&violations),
            "events[0].occur_time must be between years 1 and 9999"
        );
    }

    #[test]
    fn a_service_actor_other_than_the_calling_peer_is_rejected() {
        let mut impostor = update_event();
        impostor.actor = ActorDraft::Service("spiffe://fitflow/billing".to_owned());
        let mut itself = update_event();
        itself.actor = ActorDraft::Service("spiffe://fitflow/clients".to_owned());
        let batch = admit_batch(&[impostor, itself], Some("clients"), now()).expect("small");
        assert_eq!(batch.valid.len(), 1);
        assert_eq!(
            batch.rejected[0].reason,
            "events[0].actor.service must be the calling service"
        );
    }

    #[test]
    fn a_stored_event_from_looser_days_still_parses_for_verification() {
        let mut event = update_event();
        event.user_agent = "agent\u{7}".to_owned();
        assert!(parse_stored_event(&event).is_some());
    }
}
