-- Platform table of every service schema: audit events waiting for the relay.
CREATE TABLE audit_outbox (
    id         bigserial   PRIMARY KEY,
    event_id   uuid        NOT NULL UNIQUE,
    payload    bytea       NOT NULL, -- prost-encoded fitflow.audit.v1.AuditEvent
    created_at timestamptz NOT NULL DEFAULT now()
);

-- validate:
-- SELECT to_regclass('audit_outbox') IS NOT NULL;
