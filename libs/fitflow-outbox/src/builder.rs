//! One line per audit event.

use std::net::{IpAddr, SocketAddr};
use std::time::SystemTime;

use fitflow_proto::audit::{Action, AuditEvent, FieldChange, Purpose};
use fitflow_proto::types::{Actor, actor};
use uuid::Uuid;

/// Builds an [`AuditEvent`]:
///
/// ```
/// # use fitflow_outbox::{Action, AuditEventBuilder};
/// # let (user_id, client_id) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
/// let event = AuditEventBuilder::new("clients", Action::Update, "clients", client_id)
///     .actor_user(user_id)
///     .change("status", "active", "archived")
///     .changed_field("date_of_birth")
///     .build();
/// ```
///
/// PHI never goes into an event in the clear: use [`changed_field`](Self::changed_field)
/// (name only) or [`hashed_change`](Self::hashed_change) (keyed hashes) for it.
#[derive(Debug, Clone)]
#[must_use = "an audit event does nothing until it is built and recorded"]
pub struct AuditEventBuilder {
    event: AuditEvent,
}

impl AuditEventBuilder {
    /// An event of `source_service` (its SPIFFE name, e.g. `"clients"`) saying
    /// `action` was done to the `resource_type` record `resource_id`.
    pub fn new(
        source_service: &'static str,
        action: Action,
        resource_type: &str,
        resource_id: Uuid,
    ) -> Self {
        Self {
            event: AuditEvent {
                source_service: source_service.to_owned(),
                action: action as i32,
                resource_type: resource_type.to_owned(),
                resource_id: resource_id.to_string(),
                ..AuditEvent::default()
            },
        }
    }

    /// The acting user.
    pub fn actor_user(mut self, user_id: Uuid) -> Self {
        self.event.actor = Some(Actor {
            kind: Some(actor::Kind::UserId(user_id.to_string())),
        });
        self
    }

    /// The acting FitFlow service, by name (becomes `spiffe://fitflow/<name>`).
    pub fn actor_service(mut self, service: &str) -> Self {
        self.event.actor = Some(Actor {
            kind: Some(actor::Kind::Service(format!("spiffe://fitflow/{service}"))),
        });
        self
    }

    /// The tenant (trainer or studio owner) whose data this is.
    pub fn tenant(mut self, tenant_id: Uuid) -> Self {
        self.event.tenant_id = tenant_id.to_string();
        self
    }

    /// A changed field with its old and new values; only for data that is not PHI.
    pub fn change(mut self, field: &str, old_value: &str, new_value: &str) -> Self {
        self.event.changes.push(FieldChange {
            field: field.to_owned(),
            old_value: old_value.to_owned(),
            new_value: new_value.to_owned(),
            hashed: false,
        });
        self
    }

    /// A changed field with keyed hashes of its old and new values.
    pub fn hashed_change(mut self, field: &str, old_hash: &str, new_hash: &str) -> Self {
        self.event.changes.push(FieldChange {
            field: field.to_owned(),
            old_value: old_hash.to_owned(),
            new_value: new_hash.to_owned(),
            hashed: true,
        });
        self
    }

    /// A changed field named without values (for PHI).
    pub fn changed_field(mut self, field: &str) -> Self {
        self.event.changes.push(FieldChange {
            field: field.to_owned(),
            ..FieldChange::default()
        });
        self
    }

    /// The end user's IP address and user agent, as far as known. The audit
    /// service refuses an event whose address is not an IP address, so an
    /// address with a port keeps only its IP, anything else is left out, and
    /// the user agent is cut to 512 characters: better an event without them
    /// than no event.
    pub fn client(mut self, address: &str, user_agent: &str) -> Self {
        self.event.client_address = normalized_ip(address).unwrap_or_default();
        self.event.user_agent = user_agent.chars().take(MAX_USER_AGENT_CHARS).collect();
        self
    }

    /// Why the data was used; required for access events (view, export, print, read).
    pub fn purpose(mut self, purpose: Purpose) -> Self {
        self.event.purpose = purpose as i32;
        self
    }

    /// The W3C trace id (32 lowercase hex digits) of the request that caused the event.
    pub fn trace_id(mut self, trace_id: &str) -> Self {
        self.event.trace_id = trace_id.to_owned();
        self
    }

    /// The event, with a fresh UUID v7 event id, the current time and, unless
    /// one was set, the trace id of the request being served.
    pub fn build(self) -> AuditEvent {
        let trace_id = if self.event.trace_id.is_empty() {
            fitflow_telemetry::current_trace_id().unwrap_or_default()
        } else {
            self.event.trace_id.clone()
        };
        AuditEvent {
            event_id: Uuid::now_v7().to_string(),
            occur_time: Some(prost_types::Timestamp::from(SystemTime::now())),
            trace_id,
            ..self.event
        }
    }
}

const MAX_USER_AGENT_CHARS: usize = 512;

fn normalized_ip(address: &str) -> Option<String> {
    client_ip(address.trim()).map(|ip| ip.to_string())
}

/// The IP address in a client address as callers send it: a bare IP or an
/// `ip:port` / `[ip]:port` socket address (the port is dropped), with an
/// IPv4-mapped IPv6 address folded to its IPv4 form, so one client has one
/// form everywhere (rate limits, audit events). Anything else, surrounding
/// whitespace included, is `None`.
pub fn client_ip(address: &str) -> Option<IpAddr> {
    let ip = address
        .parse::<IpAddr>()
        .or_else(|_| address.parse::<SocketAddr>().map(|socket| socket.ip()))
        .ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_client_has_one_address_whatever_form_it_is_sent_in() {
        let expected: IpAddr = "198.51.100.7".parse().unwrap();
        for form in [
            "198.51.100.7",
            "198.51.100.7:1",
            "::ffff:198.51.100.7",
            "[::ffff:198.51.100.7]:443",
        ] {
            assert_eq!(client_ip(form), Some(expected), "{form}");
        }
        for bad in [
            "198.51.100.7 ",
            " 198.51.100.7",
            "",
            "localhost",
            "198.51.100.7\0",
        ] {
            assert_eq!(client_ip(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_built_event_has_a_v7_id_a_time_and_every_given_field() {
        let (user_id, client_id, tenant_id) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let event = AuditEventBuilder::new("clients", Action::View, "clients", client_id)
            .actor_user(user_id)
            .tenant(tenant_id)
            .purpose(Purpose::Treatment)
            .client("203.0.113.9", "agent")
            .changed_field("notes")
            .build();
        let event_id = Uuid::try_parse(&event.event_id).expect("uuid");
        assert_eq!(event_id.get_version_num(), 7);
        assert!(event.occur_time.is_some());
        assert_eq!(event.resource_id, client_id.to_string());
        assert_eq!(event.tenant_id, tenant_id.to_string());
        assert_eq!(event.purpose, Purpose::Treatment as i32);
        assert_eq!(event.changes[0].field, "notes");
        assert!(event.changes[0].new_value.is_empty());
    }

    #[test]
    fn a_service_actor_becomes_a_fitflow_spiffe_id() {
        let event = AuditEventBuilder::new("billing", Action::Create, "invoices", Uuid::new_v4())
            .actor_service("billing")
            .build();
        assert_eq!(
            event.actor.and_then(|actor| actor.kind),
            Some(actor::Kind::Service("spiffe://fitflow/billing".to_owned()))
        );
    }

    #[test]
    fn a_client_address_keeps_only_a_parseable_ip() {
        let build = |address: &str| {
            AuditEventBuilder::new("identity", Action::Authenticate, "sessions", Uuid::new_v4())
                .client(address, &"a".repeat(600))
                .build()
        };
        assert_eq!(build("203.0.113.9").client_address, "203.0.113.9");
        assert_eq!(build("[2001:db8::1]:443").client_address, "2001:db8::1");
        assert_eq!(build("198.51.100.4:5050").client_address, "198.51.100.4");
        assert_eq!(build("unknown").client_address, "");
        assert_eq!(build("unknown").user_agent.chars().count(), 512);
    }
}
