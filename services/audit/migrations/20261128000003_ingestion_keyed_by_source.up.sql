-- Ingestion is idempotent by (source service, event id), not by event id
-- alone: an event id is chosen by its source, so a service that learned or
-- guessed another's id could otherwise send it first and have the real event
-- acknowledged as a duplicate and never stored. Both logs' primary keys lead
-- with the source too, so two sources' events with one id can both be
-- stored; the partition key (occurred_at) stays last, as PostgreSQL requires.
--
-- Rollout: the previous release claims ids with ON CONFLICT (event_id), which
-- no longer names a unique constraint after this migration, so its replicas
-- fail every ingest batch until they are replaced. Relays keep such events in
-- their outboxes and retry, so nothing is lost; roll the audit service out
-- right after migrating.
--
-- Dropping and re-adding a partitioned table's primary key rebuilds the index
-- on every partition under an ACCESS EXCLUSIVE lock; ingestion waits for it.

ALTER TABLE ingested_events DROP CONSTRAINT ingested_events_pkey;
ALTER TABLE ingested_events ADD CONSTRAINT ingested_events_pkey
    PRIMARY KEY (source_service, event_id);

ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_pkey
    PRIMARY KEY (source_service, event_id, occurred_at);

ALTER TABLE access_log DROP CONSTRAINT access_log_pkey;
ALTER TABLE access_log ADD CONSTRAINT access_log_pkey
    PRIMARY KEY (source_service, event_id, occurred_at);

-- validate:
-- SELECT (SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'ingested_events'::regclass AND contype = 'p') = 'PRIMARY KEY (source_service, event_id)' AND (SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'audit_log'::regclass AND contype = 'p') = 'PRIMARY KEY (source_service, event_id, occurred_at)' AND (SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'access_log'::regclass AND contype = 'p') = 'PRIMARY KEY (source_service, event_id, occurred_at)';
