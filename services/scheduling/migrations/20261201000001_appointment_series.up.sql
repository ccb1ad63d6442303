-- The rule of each recurring series (BookSeries), kept so that edits of a
-- series (UpdateAppointment, CancelAppointment with a scope) read wall time
-- in the zone the series was booked in, and so that ending a series ends
-- its rule. Series booked before this migration have no row: their edits
-- read wall time in the trainer's zone from tenancy.
--
-- Moving a group class moves its participants' rows with it: their foreign
-- key to (appointments.id, start_time) now cascades updates of the start.
-- Expand only: running code that does not know the table keeps working.
CREATE TABLE appointment_series (
    id               uuid        PRIMARY KEY,
    trainer_id       uuid        NOT NULL,
    -- The IANA zone the rule is read in.
    time_zone        text        NOT NULL CHECK (time_zone <> ''),
    -- The rule's local wall time and first local date.
    wall_time        time        NOT NULL,
    first_date       date        NOT NULL,
    -- ISO weekdays: 1 Monday .. 7 Sunday.
    days             smallint[]  NOT NULL CHECK (cardinality(days) BETWEEN 1 AND 7
                                                 AND 1 <= ALL (days) AND 7 >= ALL (days)),
    interval_weeks   smallint    NOT NULL CHECK (interval_weeks BETWEEN 1 AND 4),
    -- The last local date it may happen on (inclusive); NULL: none given.
    until_date       date,
    -- At most this many occurrences; NULL: none given.
    occurrence_limit integer     CHECK (occurrence_limit BETWEEN 1 AND 100),
    version          bigint      NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now()
);

REVOKE DELETE, TRUNCATE ON appointment_series FROM fitflow_scheduling;

ALTER TABLE appointment_series ENABLE ROW LEVEL SECURITY;
ALTER TABLE appointment_series FORCE ROW LEVEL SECURITY;
CREATE POLICY appointment_series_system ON appointment_series
    USING (current_user = 'fitflow_scheduling_system');
CREATE POLICY appointment_series_trainer ON appointment_series
    USING (caller_acts_for(trainer_id)) WITH CHECK (caller_acts_for(trainer_id));

ALTER TABLE appointment_participants
    DROP CONSTRAINT appointment_participants_appointment_id_start_time_fkey,
    ADD CONSTRAINT appointment_participants_appointment_id_start_time_fkey
        FOREIGN KEY (appointment_id, start_time) REFERENCES appointments (id, start_time)
        ON UPDATE CASCADE;

-- validate:
-- SELECT to_regclass('appointment_series') IS NOT NULL
--    AND (SELECT relforcerowsecurity FROM pg_class WHERE oid = 'appointment_series'::regclass)
--    AND EXISTS (SELECT 1 FROM pg_constraint
--                WHERE conname = 'appointment_participants_appointment_id_start_time_fkey'
--                  AND confupdtype = 'c');
