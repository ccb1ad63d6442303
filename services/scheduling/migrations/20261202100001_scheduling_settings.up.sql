-- A trainer's scheduling settings: what applies to their calendar when a
-- request says nothing (the buffer ListFreeSlots keeps around booked
-- appointments). A trainer without a row has the defaults. `version` is
-- bumped by every update and hashed into the etag (AIP-154).
CREATE TABLE scheduling_settings (
    trainer_id             uuid        PRIMARY KEY,
    default_buffer_minutes integer     NOT NULL DEFAULT 0
                           CHECK (default_buffer_minutes BETWEEN 0 AND 240),
    version                bigint      NOT NULL DEFAULT 1,
    updated_at             timestamptz NOT NULL DEFAULT now()
);

-- Settings are updated, never deleted (the audit trail holds their history).
REVOKE DELETE, TRUNCATE ON scheduling_settings FROM fitflow_scheduling;

ALTER TABLE scheduling_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE scheduling_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY scheduling_settings_system ON scheduling_settings
    USING (current_user = 'fitflow_scheduling_system');
CREATE POLICY scheduling_settings_trainer ON scheduling_settings
    USING (caller_acts_for(trainer_id)) WITH CHECK (caller_acts_for(trainer_id));

-- validate:
-- SELECT to_regclass('scheduling_settings') IS NOT NULL
--    AND (SELECT relforcerowsecurity FROM pg_class WHERE oid = 'scheduling_settings'::regclass)
--    AND NOT has_table_privilege('fitflow_scheduling', 'scheduling_settings', 'DELETE');
