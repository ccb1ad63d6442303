//! The contract's messages to and from the domain's types. The stored form
//! of an event is its contract encoding (so `ListEvents` returns it exactly
//! as sent), which is why decoding a stored event lives here too.

use fitflow_proto::audit::{
    Action as ProtoAction, AuditEvent, ChainBreakKind, ChainVerification, EventFilter,
    ExportEventsRequest, FieldChange, ListEventsRequest, Log as ProtoLog, Purpose as ProtoPurpose,
    RejectedEvent, StoredEvent,
};
use fitflow_proto::types::Actor;
use fitflow_proto::types::actor::Kind as ActorKind;
use prost::Message as _;

use crate::domain::{
    Action, ActorDraft, BreakKind, ChainReport, Change, Choice, EventDraft, ExportDraft,
    FilterDraft, ListDraft, Log, Purpose, Rejection, WireTime,
};
use crate::repo::ListedEvent;

fn action(value: i32) -> Choice<Action> {
    match ProtoAction::try_from(value) {
        Ok(ProtoAction::Unspecified) => Choice::Unset,
        Ok(ProtoAction::Create) => Choice::Known(Action::Create),
        Ok(ProtoAction::Read) => Choice::Known(Action::Read),
        Ok(ProtoAction::Update) => Choice::Known(Action::Update),
        Ok(ProtoAction::Delete) => Choice::Known(Action::Delete),
        Ok(ProtoAction::View) => Choice::Known(Action::View),
        Ok(ProtoAction::Export) => Choice::Known(Action::Export),
        Ok(ProtoAction::Print) => Choice::Known(Action::Print),
        Ok(ProtoAction::Authenticate) => Choice::Known(Action::Authenticate),
        Err(_) => Choice::Unknown,
    }
}

fn proto_action(action: Action) -> ProtoAction {
    match action {
        Action::Create => ProtoAction::Create,
        Action::Read => ProtoAction::Read,
        Action::Update => ProtoAction::Update,
        Action::Delete => ProtoAction::Delete,
        Action::View => ProtoAction::View,
        Action::Export => ProtoAction::Export,
        Action::Print => ProtoAction::Print,
        Action::Authenticate => ProtoAction::Authenticate,
    }
}

fn purpose(value: i32) -> Choice<Purpose> {
    match ProtoPurpose::try_from(value) {
        Ok(ProtoPurpose::Unspecified) => Choice::Unset,
        Ok(ProtoPurpose::Treatment) => Choice::Known(Purpose::Treatment),
        Ok(ProtoPurpose::Payment) => Choice::Known(Purpose::Payment),
        Ok(ProtoPurpose::Operations) => Choice::Known(Purpose::Operations),
        Err(_) => Choice::Unknown,
    }
}

fn proto_purpose(purpose: Choice<Purpose>) -> i32 {
    let proto = match purpose {
        Choice::Known(Purpose::Treatment) => ProtoPurpose::Treatment,
        Choice::Known(Purpose::Payment) => ProtoPurpose::Payment,
        Choice::Known(Purpose::Operations) => ProtoPurpose::Operations,
        Choice::Unset | Choice::Unknown => ProtoPurpose::Unspecified,
    };
    proto as i32
}

fn log(value: i32) -> Choice<Log> {
    match ProtoLog::try_from(value) {
        Ok(ProtoLog::Unspecified) => Choice::Unset,
        Ok(ProtoLog::Audit) => Choice::Known(Log::Audit),
        Ok(ProtoLog::Access) => Choice::Known(Log::Access),
        Err(_) => Choice::Unknown,
    }
}

fn wire_time(time: &prost_types::Timestamp) -> WireTime {
    WireTime {
        seconds: time.seconds,
        nanos: time.nanos,
    }
}

/// An `AuditEvent` as a draft, keeping its encoding.
pub(crate) fn event_draft(event: &AuditEvent) -> EventDraft {
    EventDraft {
        event_id: event.event_id.clone(),
        source_service: event.source_service.clone(),
        actor: match event.actor.as_ref().and_then(|actor| actor.kind.as_ref()) {
            Some(ActorKind::UserId(user_id)) => ActorDraft::User(user_id.clone()),
            Some(ActorKind::Service(service)) => ActorDraft::Service(service.clone()),
            None => ActorDraft::Missing,
        },
        action: action(event.action),
        resource_type: event.resource_type.clone(),
        resource_id: event.resource_id.clone(),
        changes: event
            .changes
            .iter()
            .map(|change| Change {
                field: change.field.clone(),
                old_value: change.old_value.clone(),
                new_value: change.new_value.clone(),
                hashed: change.hashed,
            })
            .collect(),
        client_address: event.client_address.clone(),
        user_agent: event.user_agent.clone(),
        purpose: purpose(event.purpose),
        trace_id: event.trace_id.clone(),
        occur_time: event.occur_time.as_ref().map(wire_time),
        tenant_id: event.tenant_id.clone(),
        encoded: event.encode_to_vec(),
    }
}

/// A stored event's bytes as a draft; `None` when they do not decode.
pub(crate) fn stored_event_draft(bytes: &[u8]) -> Option<EventDraft> {
    AuditEvent::decode(bytes)
        .ok()
        .map(|event| event_draft(&event))
}

/// `draft` with its contract encoding filled in, for an event the audit
/// service produces itself (the EXPORT event).
pub(crate) fn encoded(draft: EventDraft) -> EventDraft {
    let event = AuditEvent {
        event_id: draft.event_id.clone(),
        source_service: draft.source_service.clone(),
        actor: match &draft.actor {
            ActorDraft::User(user_id) => Some(Actor {
                kind: Some(ActorKind::UserId(user_id.clone())),
            }),
            ActorDraft::Service(service) => Some(Actor {
                kind: Some(ActorKind::Service(service.clone())),
            }),
            ActorDraft::Missing => None,
        },
        action: draft
            .action
            .known()
            .map_or(ProtoAction::Unspecified, proto_action) as i32,
        resource_type: draft.resource_type.clone(),
        resource_id: draft.resource_id.clone(),
        changes: draft
            .changes
            .iter()
            .map(|change| FieldChange {
                field: change.field.clone(),
                old_value: change.old_value.clone(),
                new_value: change.new_value.clone(),
                hashed: change.hashed,
            })
            .collect(),
        client_address: draft.client_address.clone(),
        user_agent: draft.user_agent.clone(),
        purpose: proto_purpose(draft.purpose),
        trace_id: draft.trace_id.clone(),
        occur_time: draft.occur_time.map(|time| prost_types::Timestamp {
            seconds: time.seconds,
            nanos: time.nanos,
        }),
        tenant_id: draft.tenant_id.clone(),
    };
    EventDraft {
        encoded: event.encode_to_vec(),
        ..draft
    }
}

fn filter_draft(filter: Option<&EventFilter>) -> FilterDraft {
    let Some(filter) = filter else {
        return FilterDraft::default();
    };
    FilterDraft {
        resource_type: filter.resource_type.clone(),
        resource_id: filter.resource_id.clone(),
        actor_user_id: filter.actor_user_id.clone(),
        start_time: filter.start_time.as_ref().map(wire_time),
        end_time: filter.end_time.as_ref().map(wire_time),
        source_service: filter.source_service.clone(),
        log: log(filter.log),
        tenant_id: filter.tenant_id.clone(),
    }
}

/// A `ListEventsRequest` as a draft.
pub(crate) fn list_draft(request: &ListEventsRequest) -> ListDraft {
    ListDraft {
        filter: filter_draft(request.filter.as_ref()),
        page_size: request.page_size,
        page_token: request.page_token.clone(),
    }
}

/// An `ExportEventsRequest` as a draft.
pub(crate) fn export_draft(request: &ExportEventsRequest) -> ExportDraft {
    ExportDraft {
        filter: filter_draft(request.filter.as_ref()),
        purpose: purpose(request.purpose),
    }
}

/// A refused event as the contract reports it.
pub(crate) fn rejected_event(rejection: Rejection) -> RejectedEvent {
    RejectedEvent {
        event_id: rejection.event_id,
        index: rejection.index,
        reason: rejection.reason,
    }
}

/// A listed row as the contract returns it.
pub(crate) fn stored_event(row: ListedEvent) -> StoredEvent {
    let event = AuditEvent::decode(row.event.as_slice()).ok();
    if event.is_none() {
        tracing::error!(event_id = %row.event_id, "stored audit event does not decode");
    }
    StoredEvent {
        event,
        store_time: Some(prost_types::Timestamp {
            seconds: row.stored_at.timestamp(),
            nanos: i32::try_from(row.stored_at.timestamp_subsec_nanos()).unwrap_or(0),
        }),
        sequence: row.chain_sequence,
        chain_hash: hex::encode(&row.hash),
    }
}

fn break_kind(kind: BreakKind) -> ChainBreakKind {
    match kind {
        BreakKind::Missing => ChainBreakKind::Missing,
        BreakKind::EventUnreadable => ChainBreakKind::EventUnreadable,
        BreakKind::ColumnsAltered => ChainBreakKind::ColumnsAltered,
        BreakKind::PrevHashMismatch => ChainBreakKind::PrevHashMismatch,
        BreakKind::HashMismatch => ChainBreakKind::HashMismatch,
        BreakKind::HeadMismatch => ChainBreakKind::HeadMismatch,
    }
}

/// A chain's verification report as the contract returns it.
pub(crate) fn chain_verification(report: ChainReport) -> ChainVerification {
    ChainVerification {
        source_service: report.chain,
        verified_links: i64::try_from(report.verified_links).unwrap_or(i64::MAX),
        intact: report.first_break.is_none(),
        broken_sequence: report.first_break.map_or(0, |broken| broken.sequence),
        break_kind: report
            .first_break
            .map_or(ChainBreakKind::Unspecified, |broken| {
                break_kind(broken.kind)
            }) as i32,
        broken_event_id: report
            .broken_event_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
    }
}
