-- Participants of group classes: confirmed up to the class type's capacity,
-- then waitlisted. `position` orders them by when their join committed:
-- every join and leave of a class holds the class's appointment row lock,
-- so positions are drawn in commit order and a count is never read by two
-- joins at once. trainer_id repeats the appointment's for row-level security.
CREATE TABLE appointment_participants (
    appointment_id uuid        NOT NULL,
    start_time     timestamptz NOT NULL,
    client_id      uuid        NOT NULL,
    trainer_id     uuid        NOT NULL,
    status         text        NOT NULL CHECK (status IN ('confirmed', 'waitlisted', 'cancelled')),
    position       bigint      NOT NULL,
    attended       boolean,
    payment_status text        NOT NULL DEFAULT 'pending'
                   CHECK (payment_status IN ('pending', 'paid', 'refunded')),
    joined_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (appointment_id, client_id),
    FOREIGN KEY (appointment_id, start_time) REFERENCES appointments (id, start_time)
);
CREATE SEQUENCE appointment_participants_position;
CREATE INDEX appointment_participants_line_idx
    ON appointment_participants (appointment_id, status, position);

REVOKE DELETE, TRUNCATE ON appointment_participants FROM fitflow_scheduling;

ALTER TABLE appointment_participants ENABLE ROW LEVEL SECURITY;
ALTER TABLE appointment_participants FORCE ROW LEVEL SECURITY;
CREATE POLICY appointment_participants_system ON appointment_participants
    USING (current_user = 'fitflow_scheduling_system');
CREATE POLICY appointment_participants_trainer ON appointment_participants
    USING (caller_acts_for(trainer_id)) WITH CHECK (caller_acts_for(trainer_id));

-- validate:
-- SELECT to_regclass('appointment_participants') IS NOT NULL
--    AND (SELECT relforcerowsecurity FROM pg_class WHERE oid = 'appointment_participants'::regclass)
--    AND has_sequence_privilege('fitflow_scheduling', 'appointment_participants_position', 'USAGE');
