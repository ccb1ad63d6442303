-- Compares every two rules of a trainer in wall time again, whatever their
-- studio. Fails (and changes nothing) while two rules at different places
-- share wall time — allowed since the up migration when their zones differ;
-- end or delete one of them first.
ALTER TABLE availability_rules DROP CONSTRAINT availability_rules_no_overlap;
ALTER TABLE availability_rules ADD CONSTRAINT availability_rules_no_overlap EXCLUDE USING gist (
    trainer_id WITH =,
    day_of_week WITH =,
    int4range(start_minute, end_minute) WITH &&,
    daterange(effective_from, effective_until, '[]') WITH &&
);
