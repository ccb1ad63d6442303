-- Platform tables of every service schema for reliable effects between
-- services (DESIGN.md §11): a command to another service's idempotent
-- internal RPC is written here in the same transaction as the change that
-- causes it, and the platform's command relay delivers it.
CREATE TABLE command_outbox (
    id              bigserial   PRIMARY KEY,
    command_id      uuid        NOT NULL UNIQUE,
    target          text        NOT NULL, -- the receiving service's name
    method          text        NOT NULL, -- full gRPC path, /pkg.Service/Method
    payload         bytea       NOT NULL, -- the prost-encoded request message
    attempts        integer     NOT NULL DEFAULT 0,
    last_error      text,                 -- the last transient failure's gRPC code
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- The receiving side: a command's effect and this row commit together, so a
-- redelivered command finds its id here and does nothing twice.
CREATE TABLE received_commands (
    command_id  uuid        PRIMARY KEY,
    source      text        NOT NULL, -- the sending service (mTLS peer)
    received_at timestamptz NOT NULL DEFAULT now()
);

-- What a relay could not deliver because the receiver refused it for good:
-- audit events the audit service rejected, commands answered with a
-- permanent error. Kept for an operator to inspect and replay
-- (`fitflow outbox dead-letters|replay`); never blocks what comes after.
CREATE TABLE outbox_dead_letters (
    id          bigserial   PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('audit', 'command')),
    message_id  uuid        NOT NULL, -- the event id or command id
    target      text        NOT NULL, -- 'audit', or the command's service
    method      text        NOT NULL DEFAULT '',
    payload     bytea       NOT NULL,
    reason      text        NOT NULL, -- the receiver's reason or gRPC code, never values
    created_at  timestamptz NOT NULL, -- when the message was first written
    failed_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_dead_letters_failed_idx ON outbox_dead_letters (failed_at DESC);

-- validate:
-- SELECT to_regclass('command_outbox') IS NOT NULL
--    AND to_regclass('received_commands') IS NOT NULL
--    AND to_regclass('outbox_dead_letters') IS NOT NULL;
