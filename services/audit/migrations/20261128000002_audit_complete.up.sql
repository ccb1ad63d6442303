-- Tenant-scoped reads and the retention archive.
--
-- A trainer reads the events of their own tenant, newest first: an index on
-- (tenant_id, occurred_at) per log (created on every partition, present and
-- future). The retention archive (`fitflow audit archive`) exports a month
-- partition past retention to a file, checks it, then detaches and drops it;
-- it keeps each dropped row's chain link (sequence and hash) in
-- archived_links, so the chain still verifies across the gap, and one line per
-- partition in archived_partitions. Both are written only by the schema owner.

CREATE INDEX audit_log_tenant_idx ON audit_log (tenant_id, occurred_at DESC);
CREATE INDEX access_log_tenant_idx ON access_log (tenant_id, occurred_at DESC);

CREATE TABLE archived_links (
    chain     text   NOT NULL,
    sequence  bigint NOT NULL,
    hash      bytea  NOT NULL CHECK (octet_length(hash) = 32),
    partition text   NOT NULL,
    PRIMARY KEY (chain, sequence)
);

CREATE TABLE archived_partitions (
    partition   text        PRIMARY KEY,
    log         text        NOT NULL CHECK (log IN ('audit_log', 'access_log')),
    month       date        NOT NULL,
    row_count   bigint      NOT NULL,
    file_name   text        NOT NULL,
    sha256      text        NOT NULL,
    archived_at timestamptz NOT NULL DEFAULT now()
);

REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON archived_links, archived_partitions FROM fitflow_audit, fitflow_audit_system;
GRANT SELECT ON archived_links, archived_partitions TO fitflow_audit;

-- validate:
-- SELECT to_regclass('archived_links') IS NOT NULL AND to_regclass('archived_partitions') IS NOT NULL;
