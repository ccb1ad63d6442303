-- Weekly availability rules and their exceptions, in the trainer's local
-- wall time (the zone is tenancy's, read when slots are computed, so a
-- 07:00 rule stays at 07:00 across daylight-saving changes).
--
-- Times are minutes after local midnight: start 0..1439, end 1..1440 (1440
-- is midnight at the end of the day); a rule never runs overnight. Dates are
-- local and inclusive.
--
-- No two rules of one trainer overlap (same weekday, overlapping minutes,
-- overlapping effective dates), whatever their studio — a trainer is in one
-- place at a time. PostgreSQL enforces it with an exclusion constraint, so
-- two concurrent creates can never both pass; the handler checks first and
-- names the rule a create would overlap.
CREATE TABLE availability_rules (
    id             uuid        PRIMARY KEY,
    trainer_id     uuid        NOT NULL,
    studio_id      uuid,
    -- ISO weekday: 1 Monday .. 7 Sunday.
    day_of_week    smallint    NOT NULL CHECK (day_of_week BETWEEN 1 AND 7),
    start_minute   smallint    NOT NULL CHECK (start_minute BETWEEN 0 AND 1439),
    end_minute     smallint    NOT NULL CHECK (end_minute BETWEEN 1 AND 1440),
    effective_from date        NOT NULL,
    -- Inclusive; NULL: no end.
    effective_until date,
    version        bigint      NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT availability_rules_forward CHECK (start_minute < end_minute),
    CONSTRAINT availability_rules_dates CHECK (effective_until IS NULL OR effective_until >= effective_from),
    CONSTRAINT availability_rules_no_overlap EXCLUDE USING gist (
        trainer_id WITH =,
        day_of_week WITH =,
        int4range(start_minute, end_minute) WITH &&,
        daterange(effective_from, effective_until, '[]') WITH &&
    )
);
CREATE INDEX availability_rules_trainer_idx ON availability_rules (trainer_id, created_at, id);

-- One-off changes: time off removes availability (whole local days from
-- start_date to end_date, or one date's [start_minute, end_minute)); extra
-- hours add one date's [start_minute, end_minute).
CREATE TABLE availability_exceptions (
    id           uuid        PRIMARY KEY,
    trainer_id   uuid        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('time_off', 'extra_hours')),
    start_date   date        NOT NULL,
    end_date     date        NOT NULL,
    start_minute smallint    CHECK (start_minute BETWEEN 0 AND 1439),
    end_minute   smallint    CHECK (end_minute BETWEEN 1 AND 1440),
    version      bigint      NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT availability_exceptions_dates CHECK (end_date >= start_date AND end_date - start_date <= 366),
    CONSTRAINT availability_exceptions_times CHECK (
        (start_minute IS NULL AND end_minute IS NULL AND kind = 'time_off')
        OR (start_minute < end_minute AND start_date = end_date)
    )
);
CREATE INDEX availability_exceptions_trainer_idx ON availability_exceptions (trainer_id, created_at, id);
CREATE INDEX availability_exceptions_dates_idx ON availability_exceptions (trainer_id, start_date, end_date);

ALTER TABLE availability_rules ENABLE ROW LEVEL SECURITY;
ALTER TABLE availability_rules FORCE ROW LEVEL SECURITY;
CREATE POLICY availability_rules_system ON availability_rules
    USING (current_user = 'fitflow_scheduling_system');
CREATE POLICY availability_rules_trainer ON availability_rules
    USING (caller_acts_for(trainer_id)) WITH CHECK (caller_acts_for(trainer_id));

ALTER TABLE availability_exceptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE availability_exceptions FORCE ROW LEVEL SECURITY;
CREATE POLICY availability_exceptions_system ON availability_exceptions
    USING (current_user = 'fitflow_scheduling_system');
CREATE POLICY availability_exceptions_trainer ON availability_exceptions
    USING (caller_acts_for(trainer_id)) WITH CHECK (caller_acts_for(trainer_id));

-- validate:
-- SELECT to_regclass('availability_rules') IS NOT NULL
--    AND to_regclass('availability_exceptions') IS NOT NULL
--    AND EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'availability_rules_no_overlap')
--    AND (SELECT bool_and(relforcerowsecurity) FROM pg_class
--         WHERE oid IN ('availability_rules'::regclass, 'availability_exceptions'::regclass));
