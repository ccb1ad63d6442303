-- Availability rules at a studio are read in the studio's time zone, rules
-- at no studio in the trainer's: wall times of two places in different zones
-- can no longer be compared as such (09:00-10:00 in Vancouver does not
-- overlap 09:00-10:00 in Toronto). The exclusion constraint now compares
-- rules of one place only — same trainer and same studio (or both at none):
-- one zone, so equal wall time is equal time, and it holds whatever the code
-- does. Rules of different places are compared as real instants by the
-- handler (scheduling's `overlap` module) under the trainer's rule lock
-- (`pg_advisory_xact_lock`), which serialises every create of the trainer's
-- rules, so of two concurrent overlapping creates one is refused.
ALTER TABLE availability_rules DROP CONSTRAINT availability_rules_no_overlap;
ALTER TABLE availability_rules ADD CONSTRAINT availability_rules_no_overlap EXCLUDE USING gist (
    trainer_id WITH =,
    (coalesce(studio_id, '00000000-0000-0000-0000-000000000000'::uuid)) WITH =,
    day_of_week WITH =,
    int4range(start_minute, end_minute) WITH &&,
    daterange(effective_from, effective_until, '[]') WITH &&
);

-- validate:
-- SELECT EXISTS (SELECT 1 FROM pg_constraint
--                WHERE conname = 'availability_rules_no_overlap'
--                  AND conrelid = 'availability_rules'::regclass
--                  AND pg_get_constraintdef(oid) LIKE '%studio_id%')
