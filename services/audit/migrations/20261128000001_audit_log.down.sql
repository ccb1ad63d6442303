DROP FUNCTION ensure_month_partitions(date);
DROP TABLE access_log;
DROP TABLE audit_log;
DROP TABLE chain_heads;
DROP TABLE ingested_events;
