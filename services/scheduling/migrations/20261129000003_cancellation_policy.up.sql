-- Cancellation policies, what a late cancellation or a no-show owes, and
-- attendance.
-- The fee is copied onto the appointment when it happens, so a later policy
-- change never rewrites what was owed (billing reads the appointment).
CREATE TABLE cancellation_policies (
    trainer_id        uuid          PRIMARY KEY,
    late_cancel_hours integer       NOT NULL CHECK (late_cancel_hours BETWEEN 0 AND 168),
    late_cancel_fee   numeric(12,2) CHECK (late_cancel_fee >= 0),
    no_show_fee       numeric(12,2) CHECK (no_show_fee >= 0),
    updated_at        timestamptz   NOT NULL DEFAULT now()
);

ALTER TABLE appointments ADD COLUMN late_cancel boolean NOT NULL DEFAULT false;
ALTER TABLE appointments ADD COLUMN penalty_fee numeric(12,2) CHECK (penalty_fee >= 0);
ALTER TABLE appointments ADD COLUMN fee_waived boolean NOT NULL DEFAULT false;
-- Attendance of the one client of an individual or trial class (group
-- classes record it per participant).
ALTER TABLE appointments ADD COLUMN client_attended boolean;

REVOKE DELETE, TRUNCATE ON cancellation_policies FROM fitflow_scheduling;

ALTER TABLE cancellation_policies ENABLE ROW LEVEL SECURITY;
ALTER TABLE cancellation_policies FORCE ROW LEVEL SECURITY;
CREATE POLICY cancellation_policies_system ON cancellation_policies
    USING (current_user = 'fitflow_scheduling_system');
CREATE POLICY cancellation_policies_trainer ON cancellation_policies
    USING (caller_acts_for(trainer_id)) WITH CHECK (caller_acts_for(trainer_id));

-- validate:
-- SELECT to_regclass('cancellation_policies') IS NOT NULL
--    AND EXISTS (SELECT 1 FROM information_schema.columns
--                WHERE table_schema = current_schema() AND table_name = 'appointments'
--                  AND column_name = 'penalty_fee');
