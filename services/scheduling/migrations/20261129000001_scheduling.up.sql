-- Class types and appointments. Appointments are partitioned by year of
-- their start (primary key (id, start_time)); a DEFAULT partition keeps a row
-- for a year without a partition, and ensure_year_partition moves such rows
-- when it creates the year. A trainer is never booked twice at once: the
-- exclusion constraint cannot span partitions, so it lives on the
-- unpartitioned trainer_busy, written in the same transaction as every
-- non-cancelled appointment (DESIGN.md §9).

CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE class_types (
    id               uuid          PRIMARY KEY,
    trainer_id       uuid          NOT NULL,
    name             text          NOT NULL,
    category         text          NOT NULL CHECK (category IN ('group', 'individual', 'trial')),
    duration_minutes integer       NOT NULL CHECK (duration_minutes BETWEEN 5 AND 720),
    max_participants integer       NOT NULL DEFAULT 1 CHECK (max_participants BETWEEN 1 AND 500),
    default_rate     numeric(12,2) CHECK (default_rate >= 0),
    description      text          NOT NULL DEFAULT '',
    color            text          NOT NULL DEFAULT '' CHECK (color = '' OR color ~ '^#[0-9A-F]{6}$'),
    status           text          NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    created_at       timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT class_types_one_client CHECK (category = 'group' OR max_participants = 1)
);
CREATE INDEX class_types_trainer_idx ON class_types (trainer_id, created_at, id);

CREATE TABLE appointments (
    id               uuid          NOT NULL,
    start_time       timestamptz   NOT NULL,
    end_time         timestamptz   NOT NULL,
    trainer_id       uuid          NOT NULL,
    class_type_id    uuid          NOT NULL REFERENCES class_types (id),
    client_id        uuid,
    status           text          NOT NULL DEFAULT 'scheduled'
                     CHECK (status IN ('scheduled', 'completed', 'cancelled', 'no_show')),
    location_type    text          NOT NULL DEFAULT 'studio'
                     CHECK (location_type IN ('studio', 'online', 'client_location')),
    location_details text          NOT NULL DEFAULT '',
    client_price     numeric(12,2) CHECK (client_price >= 0),
    cancelled_at     timestamptz,
    cancel_reason    text          NOT NULL DEFAULT '',
    cancelled_by     uuid,
    version          bigint        NOT NULL DEFAULT 1,
    created_at       timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (id, start_time),
    CONSTRAINT appointments_ends_after_start CHECK (end_time > start_time),
    CONSTRAINT appointments_cancel_recorded CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL))
) PARTITION BY RANGE (start_time);
CREATE TABLE appointments_default PARTITION OF appointments DEFAULT;
CREATE INDEX appointments_trainer_idx ON appointments (trainer_id, start_time, id);

-- The time each live appointment holds; no two overlap for one trainer.
-- Half-open periods: a session ending at 10:00 and one starting at 10:00 fit.
CREATE TABLE trainer_busy (
    appointment_id uuid      PRIMARY KEY,
    trainer_id     uuid      NOT NULL,
    period         tstzrange NOT NULL,
    CONSTRAINT trainer_busy_no_overlap EXCLUDE USING gist (trainer_id WITH =, period WITH &&)
);

-- Creates the partition of `year` (appointments_yYYYY) unless it exists,
-- moving that year's rows out of the DEFAULT partition. Runs as the schema
-- owner (SECURITY DEFINER) so the runtime role may call it.
CREATE FUNCTION ensure_year_partition(year integer)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = scheduling, pg_temp
AS $fn$
DECLARE
    partition  text := format('appointments_y%s', year);
    range_from timestamptz := make_timestamptz(year, 1, 1, 0, 0, 0, 'UTC');
    range_to   timestamptz := make_timestamptz(year + 1, 1, 1, 0, 0, 0, 'UTC');
BEGIN
    IF year < 2000 OR year > 2999 THEN
        RAISE EXCEPTION 'year % is outside 2000..2999', year;
    END IF;
    -- One maintainer at a time: two replicas starting together must not race.
    PERFORM pg_advisory_xact_lock(hashtext('fitflow_scheduling_partitions'));
    IF to_regclass(partition) IS NOT NULL THEN
        RETURN;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE appointments INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', partition);
    EXECUTE format('WITH moved AS (DELETE FROM appointments_default WHERE start_time >= %L AND start_time < %L RETURNING *) '
                   'INSERT INTO %I SELECT * FROM moved', range_from, range_to, partition);
    EXECUTE format('ALTER TABLE appointments ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                   partition, range_from, range_to);
END
$fn$;
REVOKE ALL ON FUNCTION ensure_year_partition(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ensure_year_partition(integer) TO fitflow_scheduling;

-- This year and the next two, so a fresh install books into real partitions.
SELECT ensure_year_partition(extract(year FROM now() AT TIME ZONE 'UTC')::integer + y)
FROM generate_series(0, 2) AS y;

-- Whether the calling user acts for `trainer`: it is them, or a trainer
-- below them in their team (the token's team claims, fitflow.supervised).
CREATE FUNCTION caller_acts_for(trainer uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT trainer::text = current_setting('fitflow.user_id', true)
        OR trainer::text = ANY (string_to_array(NULLIF(current_setting('fitflow.supervised', true), ''), ','))
$$;

REVOKE DELETE, TRUNCATE ON class_types, appointments FROM fitflow_scheduling;

ALTER TABLE class_types ENABLE ROW LEVEL SECURITY;
ALTER TABLE class_types FORCE ROW LEVEL SECURITY;
CREATE POLICY class_types_system ON class_types
    USING (current_user = 'fitflow_scheduling_system');
CREATE POLICY class_types_trainer ON class_types
    USING (caller_acts_for(trainer_id)) WITH CHECK (caller_acts_for(trainer_id));

ALTER TABLE appointments ENABLE ROW LEVEL SECURITY;
ALTER TABLE appointments FORCE ROW LEVEL SECURITY;
CREATE POLICY appointments_system ON appointments
    USING (current_user = 'fitflow_scheduling_system');
CREATE POLICY appointments_trainer ON appointments
    USING (caller_acts_for(trainer_id)) WITH CHECK (caller_acts_for(trainer_id));

ALTER TABLE trainer_busy ENABLE ROW LEVEL SECURITY;
ALTER TABLE trainer_busy FORCE ROW LEVEL SECURITY;
CREATE POLICY trainer_busy_system ON trainer_busy
    USING (current_user = 'fitflow_scheduling_system');
CREATE POLICY trainer_busy_trainer ON trainer_busy
    USING (caller_acts_for(trainer_id)) WITH CHECK (caller_acts_for(trainer_id));

-- validate:
-- SELECT to_regclass('appointments') IS NOT NULL AND to_regclass('trainer_busy') IS NOT NULL
--    AND EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'trainer_busy_no_overlap')
--    AND (SELECT bool_and(relforcerowsecurity) FROM pg_class
--         WHERE oid IN ('class_types'::regclass, 'appointments'::regclass, 'trainer_busy'::regclass))
--    AND NOT has_table_privilege('fitflow_scheduling', 'appointments', 'DELETE');
