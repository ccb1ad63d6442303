-- Platform table of every service schema: creates made idempotent by a
-- request_id (AIP-155), written and read only through fitflow-api's
-- idempotency module. A row holds who sent which request id to which method,
-- the SHA-256 of the request (salted with the request id) and the id of the
-- resource it created: never the request itself, so no PHI lands outside
-- sealed columns. Rows older than 24 hours count as absent and are pruned.
CREATE TABLE idempotency_keys (
    principal    text        NOT NULL CHECK (length(principal) BETWEEN 1 AND 200), -- user:<uuid>, service:<name> or anonymous
    method       text        NOT NULL CHECK (length(method) BETWEEN 1 AND 200),    -- full gRPC method path
    request_id   uuid        NOT NULL,
    request_hash bytea       NOT NULL CHECK (octet_length(request_hash) = 32),
    resource_id  uuid        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal, method, request_id)
);

-- Pruning finds expired rows by age.
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);

-- validate:
-- SELECT to_regclass('idempotency_keys') IS NOT NULL AND to_regclass('idempotency_keys_created_at_idx') IS NOT NULL AND (SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass('idempotency_keys') AND attnum > 0 AND NOT attisdropped) = 6;
