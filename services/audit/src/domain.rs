//! The audit service's rules, free of I/O: event validation, which log an
//! event belongs to, the hash chain, partition naming, list filters and page
//! tokens. Everything here is unit-tested without a database.

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Datelike, Months, NaiveDate, TimeDelta, Utc};
use fitflow_error::{FieldViolation, Violations};
use fitflow_proto::audit::{
    Action, AuditEvent, EventFilter as ProtoEventFilter, ExportEventsRequest, FieldChange,
    ListEventsRequest, Log as ProtoLog, Purpose, RejectedEvent, VerifyChainRequest,
};
use fitflow_proto::types::actor::Kind as ActorKind;
use prost::Message as _;
use ring::digest;
use uuid::Uuid;

/// At most this many events in one `IngestRequest`.
pub const MAX_EVENTS_PER_BATCH: usize = 1_000;
const MAX_SOURCE_SERVICE_CHARS: usize = 64;
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
/// The `prev_hash` of the first link of every chain.
pub const GENESIS_HASH: [u8; 32] = [0; 32];
/// Events per page of `ListEvents` when the caller does not say.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// The most events per page of `ListEvents`.
pub const MAX_PAGE_SIZE: u32 = 500;

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
    /// The idempotency key.
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
    pub changes: Vec<fitflow_proto::audit::FieldChange>,
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
    /// The event re-encoded as sent, kept so `ListEvents` can return it.
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
        Action::Unspecified
        | Action::Create
        | Action::Update
        | Action::Delete
        | Action::Authenticate => Log::Audit,
    }
}

/// The stored name of an action.
pub fn action_name(action: Action) -> &'static str {
    match action {
        Action::Unspecified => "unspecified",
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
        Purpose::Unspecified => "unspecified",
        Purpose::Treatment => "treatment",
        Purpose::Payment => "payment",
        Purpose::Operations => "operations",
    }
}

fn changes_json(changes: &[fitflow_proto::audit::FieldChange]) -> serde_json::Value {
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

/// Checks every field of `event` (at position `index` of its batch). On
/// failure returns the violations, which name fields, never their values.
pub fn validate_event(
    event: &AuditEvent,
    index: usize,
    now: DateTime<Utc>,
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

    let action = Action::try_from(event.action)
        .ok()
        .filter(|action| *action != Action::Unspecified);
    violations.check(action.is_some(), &path("action"), "must be a known action");

    let resource_type_ok = !event.resource_type.trim().is_empty()
        && event.resource_type.chars().count() <= MAX_RESOURCE_TYPE_CHARS;
    violations.check(
        resource_type_ok,
        &path("resource_type"),
        "must be 1 to 100 characters",
    );

    let resource_id = parse_uuid(&event.resource_id);
    violations.check(
        resource_id.is_some(),
        &path("resource_id"),
        "must be a UUID",
    );

    let actor = match event.actor.as_ref().and_then(|actor| actor.kind.as_ref()) {
        Some(ActorKind::UserId(user_id)) => {
            let parsed = parse_uuid(user_id).map(ActorRef::User);
            violations.check(parsed.is_some(), &path("actor.user_id"), "must be a UUID");
            parsed
        }
        Some(ActorKind::Service(service)) => {
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
        None => {
            violations.add(path("actor"), "is required");
            None
        }
    };

    let occurred_at = match &event.occur_time {
        Some(time) => {
            let parsed = timestamp_micros(time);
            match parsed {
                Some(at) if not_in_future(at, now) => Some(at),
                Some(_) => {
                    violations.add(path("occur_time"), "must not be in the future");
                    None
                }
                None => {
                    violations.add(path("occur_time"), "must be a valid timestamp");
                    None
                }
            }
        }
        None => {
            violations.add(path("occur_time"), "is required");
            None
        }
    };

    let purpose = match Purpose::try_from(event.purpose) {
        Ok(Purpose::Unspecified) => None,
        Ok(purpose) => Some(purpose),
        Err(_) => {
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
                encoded: event.encode_to_vec(),
            })
        }
        // Unreachable: each None above recorded a violation.
        _ => Err(vec![FieldViolation {
            field: format!("events[{index}]"),
            description: "is invalid".to_owned(),
        }]),
    }
}

/// A batch sorted into the events to store and the events refused.
#[derive(Debug, Default)]
pub struct AdmittedBatch {
    /// Valid events, in batch order.
    pub valid: Vec<ValidEvent>,
    /// Refused events, with index and reason.
    pub rejected: Vec<RejectedEvent>,
}

/// Validates every event of a batch on its own. When the caller's mTLS
/// identity `peer` is known, an event naming another source service is
/// refused, so one service cannot forge another's events. A batch of more than
/// [`MAX_EVENTS_PER_BATCH`] events is refused whole.
pub fn admit_batch(
    events: &[AuditEvent],
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
        let reject = |reason: String| RejectedEvent {
            event_id: event.event_id.chars().take(64).collect(),
            index: u32::try_from(index).unwrap_or(u32::MAX),
            reason,
        };
        match validate_event(event, index, now) {
            Ok(valid) if peer.is_some_and(|peer| peer != valid.source_service) => {
                batch.rejected.push(reject(forged_source_reason(index)));
            }
            Ok(valid) => batch.valid.push(valid),
            Err(violations) => batch.rejected.push(reject(rejection_reason(&violations))),
        }
    }
    Ok(batch)
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

fn optional(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

fn parse_uuid(text: &str) -> Option<Uuid> {
    Uuid::try_parse(text).ok()
}

fn is_service_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SOURCE_SERVICE_CHARS
        && name
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
}

fn is_w3c_trace_id(text: &str) -> bool {
    text.len() == 32
        && text
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
        && text.bytes().any(|byte| byte != b'0')
}

fn timestamp_micros(time: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(time.nanos)
        .ok()
        .filter(|nanos| *nanos < 1_000_000_000)?;
    DateTime::from_timestamp(time.seconds, nanos / 1_000 * 1_000)
}

/// The hash of a chain link: SHA-256 over the previous link's hash, the
/// link's sequence and a canonical, length-prefixed encoding of the event.
pub fn chain_hash(prev_hash: &[u8], sequence: i64, event: &ValidEvent) -> [u8; 32] {
    let mut canonical = CanonicalEncoder::default();
    canonical.bytes(b"fitflow.audit.chain.v1");
    canonical.bytes(prev_hash);
    canonical.bytes(&sequence.to_be_bytes());
    canonical.bytes(event.event_id.as_bytes());
    canonical.text(&event.source_service);
    match &event.actor {
        ActorRef::User(user_id) => {
            canonical.text("user");
            canonical.bytes(user_id.as_bytes());
        }
        ActorRef::Service(service) => {
            canonical.text("service");
            canonical.text(service);
        }
    }
    canonical.text(action_name(event.action));
    canonical.text(&event.resource_type);
    canonical.bytes(event.resource_id.as_bytes());
    canonical.bytes(
        &u64::try_from(event.changes.len())
            .unwrap_or(u64::MAX)
            .to_be_bytes(),
    );
    for change in &event.changes {
        canonical.text(&change.field);
        canonical.text(&change.old_value);
        canonical.text(&change.new_value);
        canonical.bytes(&[u8::from(change.hashed)]);
    }
    canonical.optional_text(
        event
            .client_address
            .map(|address| address.to_string())
            .as_deref(),
    );
    canonical.optional_text(event.user_agent.as_deref());
    canonical.optional_text(event.purpose.map(purpose_name));
    canonical.optional_text(event.trace_id.as_deref());
    canonical.bytes(&event.occurred_at.timestamp_micros().to_be_bytes());
    canonical.optional_text(event.tenant_id.map(|id| id.to_string()).as_deref());
    let digest = digest::digest(&digest::SHA256, &canonical.0);
    let mut hash = [0; 32];
    hash.copy_from_slice(digest.as_ref());
    hash
}

/// Length-prefixed concatenation, so that no two different field lists
/// encode to the same bytes.
#[derive(Default)]
struct CanonicalEncoder(Vec<u8>);

impl CanonicalEncoder {
    fn bytes(&mut self, bytes: &[u8]) {
        let length = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        self.0.extend_from_slice(&length.to_be_bytes());
        self.0.extend_from_slice(bytes);
    }

    fn text(&mut self, text: &str) {
        self.bytes(text.as_bytes());
    }

    fn optional_text(&mut self, text: Option<&str>) {
        match text {
            Some(text) => {
                self.0.push(1);
                self.text(text);
            }
            None => self.0.push(0),
        }
    }
}

/// One stored link of a chain, as read back for verification.
#[derive(Debug, Clone)]
pub struct ChainLink {
    /// The link's position.
    pub sequence: i64,
    /// The previous link's hash, as stored.
    pub prev_hash: Vec<u8>,
    /// This link's hash, as stored.
    pub hash: Vec<u8>,
    /// The event as sent (prost bytes).
    pub event: Vec<u8>,
    /// The row's queryable columns.
    pub columns: StoredColumns,
}

/// What is wrong with the first broken link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakKind {
    /// The link with this sequence is missing (deleted).
    Missing,
    /// The stored event no longer decodes or validates.
    EventUnreadable,
    /// The row's columns no longer match its hashed event.
    ColumnsAltered,
    /// `prev_hash` is not the previous link's hash.
    PrevHashMismatch,
    /// The stored hash is not the hash of the stored event.
    HashMismatch,
    /// The chain head names a sequence or hash the last link does not have.
    HeadMismatch,
}

/// The first broken link of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainBreak {
    /// The sequence at which the chain breaks.
    pub sequence: i64,
    /// What is wrong there.
    pub kind: BreakKind,
}

/// The outcome of verifying one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// The chain (source service).
    pub chain: String,
    /// Links checked and found intact before the first break.
    pub verified_links: u64,
    /// The first break, or `None` when the chain is intact.
    pub first_break: Option<ChainBreak>,
    /// The event id of the broken row, when the break is in a row that exists.
    pub broken_event_id: Option<Uuid>,
}

impl ChainReport {
    /// Whether the chain is intact.
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none()
    }
}

/// Recomputes a chain link by link, in sequence order, remembering only the
/// previous hash, so a chain of any length verifies in constant memory.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    chain: String,
    expected_sequence: i64,
    prev_hash: Vec<u8>,
    verified_links: u64,
    first_break: Option<ChainBreak>,
    broken_event_id: Option<Uuid>,
}

impl ChainVerifier {
    /// A verifier for `chain` (a source service), expecting link 1 next.
    pub fn new(chain: &str) -> Self {
        Self {
            chain: chain.to_owned(),
            expected_sequence: 1,
            prev_hash: GENESIS_HASH.to_vec(),
            verified_links: 0,
            first_break: None,
            broken_event_id: None,
        }
    }

    /// Accepts the next link as archived: its row was exported by the
    /// retention archive and dropped, and only its sequence and hash were
    /// kept, so the next link's `prev_hash` still has something to match.
    pub fn push_archived(&mut self, sequence: i64, hash: Vec<u8>) -> bool {
        if self.first_break.is_some() {
            return false;
        }
        if sequence != self.expected_sequence {
            self.first_break = Some(ChainBreak {
                sequence: self.expected_sequence,
                kind: BreakKind::Missing,
            });
            return false;
        }
        self.prev_hash = hash;
        self.expected_sequence += 1;
        self.verified_links += 1;
        true
    }

    /// Checks the next link; returns whether the chain is still intact (once
    /// it is broken, further links are ignored).
    pub fn push(&mut self, link: ChainLink) -> bool {
        if self.first_break.is_some() {
            return false;
        }
        match self.check(&link) {
            Ok(()) => {
                self.prev_hash = link.hash;
                self.expected_sequence += 1;
                self.verified_links += 1;
                true
            }
            Err(broken) => {
                if broken.kind != BreakKind::Missing {
                    self.broken_event_id = Some(link.columns.event_id);
                }
                self.first_break = Some(broken);
                false
            }
        }
    }

    fn check(&self, link: &ChainLink) -> Result<(), ChainBreak> {
        let broken = |sequence, kind| ChainBreak { sequence, kind };
        if link.sequence != self.expected_sequence {
            return Err(broken(self.expected_sequence, BreakKind::Missing));
        }
        let event = AuditEvent::decode(link.event.as_slice())
            .ok()
            .and_then(|event| validate_event(&event, 0, DateTime::<Utc>::MAX_UTC).ok())
            .ok_or(broken(link.sequence, BreakKind::EventUnreadable))?;
        if event.columns() != link.columns || event.source_service != self.chain {
            return Err(broken(link.sequence, BreakKind::ColumnsAltered));
        }
        if link.prev_hash != self.prev_hash {
            return Err(broken(link.sequence, BreakKind::PrevHashMismatch));
        }
        if chain_hash(&self.prev_hash, link.sequence, &event).as_slice() != link.hash.as_slice() {
            return Err(broken(link.sequence, BreakKind::HashMismatch));
        }
        Ok(())
    }

    /// The report, checking the last link against the chain `head` (its last
    /// sequence and hash, if the chain has one), which catches a deleted tail.
    pub fn finish(self, head: Option<(i64, Vec<u8>)>) -> ChainReport {
        let last_sequence = self.expected_sequence - 1;
        let first_break = self.first_break.or_else(|| {
            let broken = |sequence, kind| Some(ChainBreak { sequence, kind });
            match head {
                Some((head_sequence, _)) if head_sequence > last_sequence => {
                    broken(last_sequence + 1, BreakKind::Missing)
                }
                Some((head_sequence, head_hash))
                    if head_sequence != last_sequence || head_hash != self.prev_hash =>
                {
                    broken(head_sequence, BreakKind::HeadMismatch)
                }
                None if last_sequence > 0 => broken(last_sequence, BreakKind::HeadMismatch),
                _ => None,
            }
        });
        ChainReport {
            chain: self.chain,
            verified_links: self.verified_links,
            first_break,
            broken_event_id: self.broken_event_id,
        }
    }
}

/// Recomputes a chain from its links in sequence order and reports the first
/// break. `head` is the chain head (last sequence and hash), if any.
pub fn verify_links(
    chain: &str,
    links: impl IntoIterator<Item = ChainLink>,
    head: Option<(i64, Vec<u8>)>,
) -> ChainReport {
    let mut verifier = ChainVerifier::new(chain);
    for link in links {
        if !verifier.push(link) {
            break;
        }
    }
    verifier.finish(head)
}

/// The first day of the month that `at` falls in (UTC).
pub fn month_start(at: DateTime<Utc>) -> NaiveDate {
    at.date_naive().with_day(1).unwrap_or(NaiveDate::MIN)
}

/// The months whose partitions should exist at `now`: this one and the next two.
pub fn partition_months(now: DateTime<Utc>) -> [NaiveDate; 3] {
    let this_month = month_start(now);
    let add = |months| {
        this_month
            .checked_add_months(Months::new(months))
            .unwrap_or(this_month)
    };
    [this_month, add(1), add(2)]
}

/// The name of `log`'s partition for the month starting `month`, e.g. `audit_log_y2026m03`.
pub fn partition_name(log: Log, month: NaiveDate) -> String {
    format!("{}_y{:04}m{:02}", log.table(), month.year(), month.month())
}

/// Where a page of `ListEvents` resumes: after the event at `(occurred_at, event_id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCursor {
    /// The last returned event's occur time.
    pub occurred_at: DateTime<Utc>,
    /// The last returned event's id.
    pub event_id: Uuid,
}

impl PageCursor {
    /// The opaque token handed to the caller.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "v1:{}:{}",
            self.occurred_at.timestamp_micros(),
            self.event_id
        ))
    }

    /// Parses a token made by [`PageCursor::encode`].
    pub fn decode(token: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let mut parts = text.splitn(3, ':');
        if parts.next()? != "v1" {
            return None;
        }
        let occurred_at = DateTime::from_timestamp_micros(parts.next()?.parse().ok()?)?;
        let event_id = Uuid::try_parse(parts.next()?).ok()?;
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

/// Validates the shared filter fields into an [`EventFilter`] without paging.
fn validate_filter(fields: &ProtoEventFilter, violations: &mut Violations) -> EventFilter {
    let resource_type = optional(&fields.resource_type).map(str::to_owned);
    violations.check(
        resource_type
            .as_ref()
            .is_none_or(|kind| kind.chars().count() <= MAX_RESOURCE_TYPE_CHARS),
        "filter.resource_type",
        "must be at most 100 characters",
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
    let mut time = |field: &str, value: Option<&prost_types::Timestamp>| {
        value.and_then(|time| {
            let parsed = timestamp_micros(time);
            violations.check(parsed.is_some(), field, "must be a valid timestamp");
            parsed
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
    let log = match ProtoLog::try_from(fields.log) {
        Ok(ProtoLog::Unspecified) => None,
        Ok(ProtoLog::Audit) => Some(Log::Audit),
        Ok(ProtoLog::Access) => Some(Log::Access),
        Err(_) => {
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

/// Validates a `ListEventsRequest` into an [`EventFilter`].
pub fn validate_list_request(
    request: &ListEventsRequest,
) -> Result<EventFilter, Vec<FieldViolation>> {
    let mut violations = Violations::new();
    let filter = validate_filter(&request.filter.clone().unwrap_or_default(), &mut violations);
    let page_size = match u32::try_from(request.page_size) {
        Ok(0) => DEFAULT_PAGE_SIZE,
        Ok(size) => size.min(MAX_PAGE_SIZE),
        Err(_) => {
            violations.add("page_size", "must not be negative");
            DEFAULT_PAGE_SIZE
        }
    };
    let after = optional(&request.page_token).and_then(|token| {
        let parsed = PageCursor::decode(token);
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

/// Validates a `VerifyChainRequest`: the chain to verify, or `None` for every chain.
pub fn validate_verify_request(
    request: &VerifyChainRequest,
) -> Result<Option<String>, Vec<FieldViolation>> {
    let source = optional(&request.source_service);
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
pub fn validate_export_request(
    request: &ExportEventsRequest,
) -> Result<ExportPlan, Vec<FieldViolation>> {
    let mut violations = Violations::new();
    let filter = validate_filter(&request.filter.clone().unwrap_or_default(), &mut violations);
    let purpose = Purpose::try_from(request.purpose)
        .ok()
        .filter(|purpose| *purpose != Purpose::Unspecified);
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
) -> AuditEvent {
    let filter = &plan.filter;
    let (resource_type, resource_id) = match (&filter.resource_type, filter.resource_id) {
        (Some(kind), Some(id)) => (kind.clone(), id),
        _ => (EXPORT_RESOURCE_TYPE.to_owned(), export_id),
    };
    let mut changes = Vec::new();
    let mut describe = |field: &str, value: Option<String>| {
        if let Some(value) = value {
            changes.push(FieldChange {
                field: format!("filter.{field}"),
                new_value: value,
                ..FieldChange::default()
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
    AuditEvent {
        event_id: Uuid::now_v7().to_string(),
        source_service: AUDIT_SOURCE.to_owned(),
        actor: Some(fitflow_proto::types::Actor {
            kind: Some(ActorKind::UserId(actor.to_string())),
        }),
        action: Action::Export as i32,
        resource_type,
        resource_id: resource_id.to_string(),
        changes,
        purpose: plan.purpose as i32,
        occur_time: Some(prost_types::Timestamp {
            seconds: now.timestamp(),
            nanos: i32::try_from(now.timestamp_subsec_nanos()).unwrap_or(0),
        }),
        tenant_id: filter
            .tenant_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        ..AuditEvent::default()
    }
}

/// The month a partition named `<table>_yYYYYmMM` holds, or `None` for any
/// other name (the DEFAULT partition, say).
pub fn partition_month(name: &str) -> Option<(Log, NaiveDate)> {
    Log::ALL.into_iter().find_map(|log| {
        let suffix = name.strip_prefix(log.table())?.strip_prefix("_y")?;
        let (year, month) = suffix.split_once('m')?;
        if year.len() != 4 || month.len() != 2 {
            return None;
        }
        let date = NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, 1)?;
        Some((log, date))
    })
}

/// Whether the partition of the month starting `month` is past retention at
/// `now`: its whole month ended at least `retention_months` months before the
/// start of the current month.
pub fn past_retention(month: NaiveDate, now: DateTime<Utc>, retention_months: u32) -> bool {
    let Some(cutoff) = month_start(now).checked_sub_months(Months::new(retention_months)) else {
        return false;
    };
    month
        .checked_add_months(Months::new(1))
        .is_some_and(|month_end| month_end <= cutoff)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;
    use fitflow_proto::audit::FieldChange;
    use fitflow_proto::types::Actor;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0)
            .single()
            .expect("valid time")
    }

    fn update_event() -> AuditEvent {
        AuditEvent {
            event_id: Uuid::now_v7().to_string(),
            source_service: "clients".to_owned(),
            actor: Some(Actor {
                kind: Some(ActorKind::UserId(Uuid::new_v4().to_string())),
            }),
            action: Action::Update as i32,
            resource_type: "clients".to_owned(),
            resource_id: Uuid::new_v4().to_string(),
            changes: vec![FieldChange {
                field: "status".to_owned(),
                old_value: "active".to_owned(),
                new_value: "archived".to_owned(),
                hashed: false,
            }],
            client_address: "203.0.113.7".to_owned(),
            user_agent: "test".to_owned(),
            purpose: Purpose::Unspecified as i32,
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".to_owned(),
            occur_time: Some(prost_types::Timestamp {
                seconds: now().timestamp() - 60,
                nanos: 123_456_789,
            }),
            tenant_id: Uuid::new_v4().to_string(),
        }
    }

    fn fields(violations: &[FieldViolation]) -> Vec<&str> {
        violations.iter().map(|v| v.field.as_str()).collect()
    }

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
        event.actor = None;
        event.action = Action::Unspecified as i32;
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
        event.action = Action::View as i32;
        let violations = validate_event(&event, 0, now()).expect_err("invalid");
        assert_eq!(fields(&violations), ["events[0].purpose"]);
        event.purpose = Purpose::Treatment as i32;
        let valid = validate_event(&event, 0, now()).expect("valid");
        assert_eq!(valid.log(), Log::Access);
    }

    #[test]
    fn a_service_actor_must_be_a_fitflow_spiffe_id() {
        let mut event = update_event();
        event.actor = Some(Actor {
            kind: Some(ActorKind::Service("spiffe://evil/billing".to_owned())),
        });
        assert_eq!(
            fields(&validate_event(&event, 0, now()).expect_err("invalid")),
            ["events[0].actor.service"]
        );
        event.actor = Some(Actor {
            kind: Some(ActorKind::Service("spiffe://fitflow/billing".to_owned())),
        });
        assert!(validate_event(&event, 0, now()).is_ok());
    }

    #[test]
    fn oversized_values_and_future_times_are_rejected_without_echoing_values() {
        let mut event = update_event();
        event.changes[0].new_value = "x".repeat(MAX_FIELD_VALUE_CHARS + 1);
        event.occur_time = Some(prost_types::Timestamp {
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
    fn the_chain_hash_depends_on_the_previous_hash_the_sequence_and_every_field() {
        let event = validate_event(&update_event(), 0, now()).expect("valid");
        let first = chain_hash(&GENESIS_HASH, 1, &event);
        assert_eq!(first, chain_hash(&GENESIS_HASH, 1, &event));
        assert_ne!(first, chain_hash(&GENESIS_HASH, 2, &event));
        assert_ne!(first, chain_hash(&[1; 32], 1, &event));
        let mut edited = event;
        edited.changes[0].new_value = "active".to_owned();
        assert_ne!(first, chain_hash(&GENESIS_HASH, 1, &edited));
    }

    #[test]
    fn length_prefixes_keep_shifted_field_boundaries_apart() {
        let mut left = validate_event(&update_event(), 0, now()).expect("valid");
        let mut right = left.clone();
        left.changes[0].old_value = "ab".to_owned();
        left.changes[0].new_value = "c".to_owned();
        right.changes[0].old_value = "a".to_owned();
        right.changes[0].new_value = "bc".to_owned();
        assert_ne!(
            chain_hash(&GENESIS_HASH, 1, &left),
            chain_hash(&GENESIS_HASH, 1, &right)
        );
    }

    fn chain_of(count: i64) -> Vec<ChainLink> {
        let mut prev_hash = GENESIS_HASH.to_vec();
        (1..=count)
            .map(|sequence| {
                let event = validate_event(&update_event(), 0, now()).expect("valid");
                let hash = chain_hash(&prev_hash, sequence, &event).to_vec();
                let link = ChainLink {
                    sequence,
                    prev_hash: prev_hash.clone(),
                    hash: hash.clone(),
                    event: event.encoded.clone(),
                    columns: event.columns(),
                };
                prev_hash = hash;
                link
            })
            .collect()
    }

    fn head_of(links: &[ChainLink]) -> Option<(i64, Vec<u8>)> {
        links.last().map(|link| (link.sequence, link.hash.clone()))
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let links = chain_of(3);
        let head = head_of(&links);
        let report = verify_links("clients", links, head);
        assert!(report.is_intact(), "{report:?}");
        assert_eq!(report.verified_links, 3);
    }

    #[test]
    fn a_deleted_link_is_reported_as_missing_at_its_sequence() {
        let mut links = chain_of(4);
        let head = head_of(&links);
        links.remove(1);
        let report = verify_links("clients", links, head);
        assert_eq!(
            report.first_break,
            Some(ChainBreak {
                sequence: 2,
                kind: BreakKind::Missing
            })
        );
        assert_eq!(report.verified_links, 1);
    }

    #[test]
    fn a_deleted_last_link_is_caught_by_the_chain_head() {
        let mut links = chain_of(3);
        let head = head_of(&links);
        links.pop();
        let report = verify_links("clients", links, head);
        assert_eq!(
            report.first_break,
            Some(ChainBreak {
                sequence: 3,
                kind: BreakKind::Missing
            })
        );
    }

    #[test]
    fn an_edited_column_or_event_breaks_the_chain_at_that_link() {
        let mut links = chain_of(3);
        let head = head_of(&links);
        links[1].columns.resource_type = "invoices".to_owned();
        let report = verify_links("clients", links, head);
        assert_eq!(
            report.first_break,
            Some(ChainBreak {
                sequence: 2,
                kind: BreakKind::ColumnsAltered
            })
        );

        let mut links = chain_of(3);
        let head = head_of(&links);
        links[2].hash[0] ^= 1;
        let report = verify_links("clients", links, head);
        assert_eq!(
            report.first_break,
            Some(ChainBreak {
                sequence: 3,
                kind: BreakKind::HashMismatch
            })
        );
    }

    #[test]
    fn partitions_are_named_by_year_and_month_for_this_and_the_next_two_months() {
        let months = partition_months(
            Utc.with_ymd_and_hms(2026, 11, 28, 0, 0, 0)
                .single()
                .expect("time"),
        );
        let names: Vec<_> = months
            .iter()
            .map(|month| partition_name(Log::Audit, *month))
            .collect();
        assert_eq!(
            names,
            [
                "audit_log_y2026m11",
                "audit_log_y2026m12",
                "audit_log_y2027m01"
            ]
        );
        assert_eq!(
            partition_name(Log::Access, months[0]),
            "access_log_y2026m11"
        );
    }

    #[test]
    fn a_page_token_round_trips_and_garbage_is_refused() {
        let cursor = PageCursor {
            occurred_at: now(),
            event_id: Uuid::now_v7(),
        };
        assert_eq!(PageCursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(PageCursor::decode("garbage!"), None);
    }

    #[test]
    fn a_resource_id_filter_requires_a_resource_type_and_page_size_is_capped() {
        let request = ListEventsRequest {
            filter: Some(ProtoEventFilter {
                resource_id: Uuid::new_v4().to_string(),
                ..Default::default()
            }),
            page_size: -1,
            ..Default::default()
        };
        let violations = validate_list_request(&request).expect_err("invalid");
        assert_eq!(fields(&violations), ["filter.resource_id", "page_size"]);
        let request = ListEventsRequest {
            page_size: 10_000,
            ..Default::default()
        };
        assert_eq!(
            validate_list_request(&request).expect("valid").page_size,
            MAX_PAGE_SIZE
        );
        let defaulted = validate_list_request(&ListEventsRequest::default()).expect("valid");
        assert_eq!(defaulted.page_size, DEFAULT_PAGE_SIZE);
    }

    #[test]
    fn an_export_needs_a_purpose_and_a_known_log() {
        let request = ExportEventsRequest {
            filter: Some(ProtoEventFilter {
                log: 7,
                tenant_id: "nope".to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let violations = validate_export_request(&request).expect_err("invalid");
        assert_eq!(
            fields(&violations),
            ["filter.log", "filter.tenant_id", "purpose"]
        );
        let plan = validate_export_request(&ExportEventsRequest {
            filter: Some(ProtoEventFilter {
                log: ProtoLog::Access as i32,
                ..Default::default()
            }),
            purpose: Purpose::Operations as i32,
        })
        .expect("valid");
        assert_eq!(plan.filter.log, Some(Log::Access));
        assert_eq!(plan.filter.page_size, MAX_PAGE_SIZE);
    }

    #[test]
    fn the_export_event_is_a_valid_access_event_naming_the_caller_record_and_filter() {
        let (actor, client, export_id) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let plan = validate_export_request(&ExportEventsRequest {
            filter: Some(ProtoEventFilter {
                resource_type: "clients".to_owned(),
                resource_id: client.to_string(),
                log: ProtoLog::Access as i32,
                ..Default::default()
            }),
            purpose: Purpose::Treatment as i32,
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

        let unscoped = validate_export_request(&ExportEventsRequest {
            purpose: Purpose::Operations as i32,
            ..Default::default()
        })
        .expect("valid");
        let event = export_event(&unscoped, actor, export_id, now());
        assert_eq!(event.resource_type, EXPORT_RESOURCE_TYPE);
        assert_eq!(event.resource_id, export_id.to_string());
    }

    #[test]
    fn partition_names_parse_back_to_their_month_and_others_do_not() {
        let march = NaiveDate::from_ymd_opt(2019, 3, 1).expect("date");
        assert_eq!(
            partition_month(&partition_name(Log::Access, march)),
            Some((Log::Access, march))
        );
        assert_eq!(partition_month("audit_log_default"), None);
        assert_eq!(partition_month("audit_log_y2019m13"), None);
        assert_eq!(partition_month("ingested_events"), None);
    }

    #[test]
    fn a_partition_is_past_retention_once_its_whole_month_is_older_than_the_period() {
        let date = |y, m| NaiveDate::from_ymd_opt(y, m, 1).expect("date");
        // now() is 2026-11-28; 72 months back from 2026-11-01 is 2020-11-01.
        assert!(past_retention(date(2020, 10), now(), 72));
        assert!(!past_retention(date(2020, 11), now(), 72));
        assert!(!past_retention(date(2026, 11), now(), 72));
        assert!(past_retention(date(2026, 10), now(), 0));
    }

    #[test]
    fn archived_links_keep_the_chain_whole_but_a_gap_after_them_is_missing() {
        let links = chain_of(4);
        let head = head_of(&links);
        let mut verifier = ChainVerifier::new("clients");
        assert!(verifier.push_archived(1, links[0].hash.clone()));
        assert!(verifier.push_archived(2, links[1].hash.clone()));
        for link in links[2..].iter().cloned() {
            assert!(verifier.push(link));
        }
        let report = verifier.finish(head.clone());
        assert!(report.is_intact(), "{report:?}");
        assert_eq!(report.verified_links, 4);

        let mut verifier = ChainVerifier::new("clients");
        assert!(verifier.push_archived(1, links[0].hash.clone()));
        assert!(!verifier.push(links[2].clone()));
        let report = verifier.finish(head);
        assert_eq!(
            report.first_break,
            Some(ChainBreak {
                sequence: 2,
                kind: BreakKind::Missing
            })
        );
        assert_eq!(report.broken_event_id, None);
    }

    #[test]
    fn an_edited_link_reports_the_event_id_of_its_row() {
        let mut links = chain_of(3);
        let head = head_of(&links);
        links[1].columns.resource_type = "invoices".to_owned();
        let edited = links[1].columns.event_id;
        let report = verify_links("clients", links, head);
        assert_eq!(report.broken_event_id, Some(edited));
    }
}
