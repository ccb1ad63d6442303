//! A read of health data and its access event in one statement: the event
//! is recorded if, and only if, the read finds its row, and both commit
//! together or not at all — no event, no data — in one round trip where a
//! transaction (`BEGIN`, context, read, event, `COMMIT`) took four or five.

use prost::Message as _;
use sqlx::Postgres;
use sqlx::postgres::PgArguments;
use sqlx::query::QueryAs;

use crate::OutboxError;
use crate::store::recordable;
use fitflow_proto::audit::AuditEvent;

/// `AuditEvent.tenant_id` (field 13, length-delimited) as the first byte of
/// its encoding, followed by the length of a UUID's text (36).
const TENANT_ID_KEY: [u8; 2] = [(13 << 3) | 2, 36];

/// `read` — a statement from `fitflow_db::one_trip` (the caller's context at
/// `$1`–`$3`, its own parameters from `$6`) that finds at most one row —
/// with an access event recorded beside it in the same statement, whose
/// tenant is the row's `tenant_column` (a `uuid`): "who viewed this" is
/// answered to the owner the read found. The event is bound by
/// [`bind_event`] at `$4` and `$5`; the statement returns `read`'s row.
///
/// One statement is one transaction: the row and the outbox row commit
/// together, and a read that finds nothing records nothing. Once it has
/// returned a row, [`crate::ring`] the schema's relay: the statement holds
/// no `NOTIFY`, which would serialise its commit with every notifying one. `tenant_column` is a column name the
/// caller writes, never input.
pub fn recorded_read(read: &str, tenant_column: &str) -> String {
    let [key, length] = TENANT_ID_KEY;
    // Protocol Buffers merge concatenated encodings, a later singular field
    // replacing an earlier one: the payload bound without a tenant, followed
    // by the tenant's own encoding, decodes as the event with that tenant.
    format!(
        "WITH fitflow_read AS MATERIALIZED ({read}), \
         fitflow_recorded AS (INSERT INTO audit_outbox (event_id, payload) \
         SELECT $4, $5 || '\\x{key:02x}{length:02x}'::bytea \
         || convert_to(fitflow_read.{tenant_column}::text, 'UTF8') FROM fitflow_read) \
         SELECT fitflow_read.* FROM fitflow_read"
    )
}

/// Binds `event` as `$4` and `$5` of a [`recorded_read`] (after the
/// context's `$1`–`$3`); its tenant is left to the row the read finds.
/// Refuses an event that [`crate::record`] would refuse.
pub fn bind_event<'q, O>(
    query: QueryAs<'q, Postgres, O, PgArguments>,
    event: &AuditEvent,
) -> Result<QueryAs<'q, Postgres, O, PgArguments>, OutboxError> {
    let event_id = recordable(event)?;
    let without_tenant = AuditEvent {
        tenant_id: String::new(),
        ..event.clone()
    };
    Ok(query.bind(event_id).bind(without_tenant.encode_to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn an_event_followed_by_the_tenant_key_decodes_with_that_tenant() {
        let owner = Uuid::new_v4();
        let event = AuditEvent {
            event_id: Uuid::new_v4().to_string(),
            resource_type: "client".to_owned(),
            tenant_id: Uuid::new_v4().to_string(),
            ..AuditEvent::default()
        };
        let mut payload = event.encode_to_vec();
        payload.extend_from_slice(&TENANT_ID_KEY);
        payload.extend_from_slice(owner.to_string().as_bytes());
        let decoded = AuditEvent::decode(payload.as_slice()).unwrap();
        assert_eq!(
            decoded,
            AuditEvent {
                tenant_id: owner.to_string(),
                ..event
            }
        );
    }

    #[test]
    fn the_recorded_read_writes_the_tenant_key_as_a_bytea_literal() {
        let sql = recorded_read("SELECT 1", "trainer_id");
        assert!(sql.contains("$5 || '\\x6a24'::bytea || convert_to(fitflow_read.trainer_id::text"));
        assert!(sql.starts_with("WITH fitflow_read AS MATERIALIZED (SELECT 1), "));
        assert!(sql.ends_with("SELECT fitflow_read.* FROM fitflow_read"));
    }
}
