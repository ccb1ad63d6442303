-- Back to idempotency by event id alone. This fails, changing nothing, when
-- two sources have stored events with the same id: reverting would have to
-- drop one of them, and the trail never loses an event.

ALTER TABLE access_log DROP CONSTRAINT access_log_pkey;
ALTER TABLE access_log ADD CONSTRAINT access_log_pkey PRIMARY KEY (event_id, occurred_at);

ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_pkey PRIMARY KEY (event_id, occurred_at);

ALTER TABLE ingested_events DROP CONSTRAINT ingested_events_pkey;
ALTER TABLE ingested_events ADD CONSTRAINT ingested_events_pkey PRIMARY KEY (event_id);
