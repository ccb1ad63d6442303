-- A stand-in for a service's first migration: its audit outbox.
CREATE TABLE audit_outbox (
    id         bigserial   PRIMARY KEY,
    event_id   uuid        NOT NULL UNIQUE,
    payload    bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
