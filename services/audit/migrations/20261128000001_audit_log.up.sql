-- The audit service's append-only store.
--
-- audit_log holds changes and authentication events, access_log holds reads of
-- protected data (view, export, print, read). Both are partitioned by month on
-- the event's occur time, with a DEFAULT partition so that an event for a month
-- without a partition is still stored. Every row is a link in the hash chain of
-- its source service (chain_heads holds each chain's last link).

CREATE TABLE ingested_events (
    event_id       uuid        PRIMARY KEY,
    source_service text        NOT NULL,
    log            text        NOT NULL CHECK (log IN ('audit_log', 'access_log')),
    occurred_at    timestamptz NOT NULL,
    ingested_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chain_heads (
    chain    text   PRIMARY KEY,
    sequence bigint NOT NULL CHECK (sequence >= 0),
    hash     bytea  NOT NULL CHECK (octet_length(hash) = 32)
);

CREATE TABLE audit_log (
    event_id       uuid        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    stored_at      timestamptz NOT NULL DEFAULT now(),
    source_service text        NOT NULL,
    chain_sequence bigint      NOT NULL,
    prev_hash      bytea       NOT NULL,
    hash           bytea       NOT NULL,
    action         text        NOT NULL,
    actor_user_id  uuid,
    actor_service  text,
    tenant_id      uuid,
    resource_type  text        NOT NULL,
    resource_id    uuid        NOT NULL,
    changes        jsonb       NOT NULL DEFAULT '[]'::jsonb,
    client_address inet,
    user_agent     text,
    purpose        text,
    trace_id       text,
    event          bytea       NOT NULL, -- the prost-encoded AuditEvent as sent
    PRIMARY KEY (event_id, occurred_at),
    CHECK ((actor_user_id IS NULL) <> (actor_service IS NULL))
) PARTITION BY RANGE (occurred_at);

CREATE TABLE access_log (
    event_id       uuid        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    stored_at      timestamptz NOT NULL DEFAULT now(),
    source_service text        NOT NULL,
    chain_sequence bigint      NOT NULL,
    prev_hash      bytea       NOT NULL,
    hash           bytea       NOT NULL,
    action         text        NOT NULL,
    actor_user_id  uuid,
    actor_service  text,
    tenant_id      uuid,
    resource_type  text        NOT NULL,
    resource_id    uuid        NOT NULL,
    changes        jsonb       NOT NULL DEFAULT '[]'::jsonb,
    client_address inet,
    user_agent     text,
    purpose        text        NOT NULL,
    trace_id       text,
    event          bytea       NOT NULL,
    PRIMARY KEY (event_id, occurred_at),
    CHECK ((actor_user_id IS NULL) <> (actor_service IS NULL))
) PARTITION BY RANGE (occurred_at);

CREATE TABLE audit_log_default PARTITION OF audit_log DEFAULT;
CREATE TABLE access_log_default PARTITION OF access_log DEFAULT;

CREATE INDEX audit_log_actor_idx ON audit_log (actor_user_id, occurred_at DESC);
CREATE INDEX audit_log_resource_idx ON audit_log (resource_type, resource_id, occurred_at DESC);
CREATE INDEX audit_log_time_idx ON audit_log (occurred_at DESC, event_id DESC);
CREATE INDEX audit_log_chain_idx ON audit_log (source_service, chain_sequence);
CREATE INDEX access_log_actor_idx ON access_log (actor_user_id, occurred_at DESC);
CREATE INDEX access_log_resource_idx ON access_log (resource_type, resource_id, occurred_at DESC);
CREATE INDEX access_log_time_idx ON access_log (occurred_at DESC, event_id DESC);
CREATE INDEX access_log_chain_idx ON access_log (source_service, chain_sequence);

-- Append-only: the runtime role may insert and read, never change or remove.
-- (The schema's default privileges grant UPDATE and DELETE on every new table.)
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log, access_log, audit_log_default, access_log_default,
    ingested_events FROM fitflow_audit, fitflow_audit_system;
-- chain_heads is the one table the runtime role updates (and only that).
REVOKE DELETE, TRUNCATE ON chain_heads FROM fitflow_audit, fitflow_audit_system;

-- Creates the month partitions of audit_log and access_log that start at
-- `month_start` (the first day of a month), named <table>_yYYYYmMM, unless
-- they exist. Rows for that month already in the DEFAULT partition are moved
-- into the new partition. Runs as the schema owner (SECURITY DEFINER), so the
-- runtime role may call it without owning any table.
CREATE FUNCTION ensure_month_partitions(month_start date)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = audit, pg_temp
AS $fn$
DECLARE
    parent    text;
    partition text;
    range_from timestamptz;
    range_to   timestamptz;
BEGIN
    IF month_start <> date_trunc('month', month_start)::date THEN
        RAISE EXCEPTION 'month_start must be the first day of a month';
    END IF;
    -- One maintainer at a time: two replicas starting together must not race.
    PERFORM pg_advisory_xact_lock(hashtext('fitflow_audit_partitions'));
    range_from := month_start::timestamp AT TIME ZONE 'UTC';
    range_to   := (month_start + interval '1 month')::timestamp AT TIME ZONE 'UTC';
    FOREACH parent IN ARRAY ARRAY['audit_log', 'access_log'] LOOP
        partition := parent || to_char(month_start, '"_y"YYYY"m"MM');
        IF to_regclass(partition) IS NOT NULL THEN
            CONTINUE;
        END IF;
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                       partition, parent);
        EXECUTE format('WITH moved AS (DELETE FROM %I WHERE occurred_at >= %L AND occurred_at < %L RETURNING *) '
                       'INSERT INTO %I SELECT * FROM moved',
                       parent || '_default', range_from, range_to, partition);
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       parent, partition, range_from, range_to);
        EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON %I FROM fitflow_audit, fitflow_audit_system', partition);
    END LOOP;
END
$fn$;

REVOKE ALL ON FUNCTION ensure_month_partitions(date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ensure_month_partitions(date) TO fitflow_audit;

-- The current month and the next two, so a fresh install stores into real partitions.
SELECT ensure_month_partitions((date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => m))::date)
FROM generate_series(0, 2) AS m;

-- validate:
-- SELECT to_regclass('audit_log') IS NOT NULL AND to_regclass('access_log') IS NOT NULL
--    AND to_regclass('ingested_events') IS NOT NULL AND to_regclass('chain_heads') IS NOT NULL
--    AND NOT has_table_privilege('fitflow_' || current_schema(), 'audit_log', 'UPDATE');
