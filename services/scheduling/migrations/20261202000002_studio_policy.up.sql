-- A studio's cancellation policy: when set, it prices late cancellations
-- and no-shows of the sessions at the studio, whoever their trainer, in
-- place of each trainer's own. Anyone may read one (what a late cancel at
-- the studio costs is no secret); only the studio's managers write it, once
-- the handler has checked their token and set `fitflow.managed_studio`.
CREATE TABLE studio_cancellation_policies (
    studio_id         uuid          PRIMARY KEY,
    late_cancel_hours integer       NOT NULL CHECK (late_cancel_hours BETWEEN 0 AND 168),
    late_cancel_fee   numeric(12,2) CHECK (late_cancel_fee >= 0),
    no_show_fee       numeric(12,2) CHECK (no_show_fee >= 0),
    updated_by        uuid          NOT NULL,
    updated_at        timestamptz   NOT NULL DEFAULT now()
);

REVOKE DELETE, TRUNCATE ON studio_cancellation_policies FROM fitflow_scheduling;

ALTER TABLE studio_cancellation_policies ENABLE ROW LEVEL SECURITY;
ALTER TABLE studio_cancellation_policies FORCE ROW LEVEL SECURITY;
CREATE POLICY studio_cancellation_policies_system ON studio_cancellation_policies
    USING (current_user = 'fitflow_scheduling_system');
CREATE POLICY studio_cancellation_policies_read ON studio_cancellation_policies FOR SELECT
    USING (true);
CREATE POLICY studio_cancellation_policies_insert ON studio_cancellation_policies FOR INSERT
    WITH CHECK (caller_manages_studio(studio_id));
CREATE POLICY studio_cancellation_policies_update ON studio_cancellation_policies FOR UPDATE
    USING (caller_manages_studio(studio_id)) WITH CHECK (caller_manages_studio(studio_id));

-- validate:
-- SELECT to_regclass('studio_cancellation_policies') IS NOT NULL
--    AND (SELECT relforcerowsecurity FROM pg_class
--         WHERE oid = 'studio_cancellation_policies'::regclass)
--    AND NOT has_table_privilege('fitflow_scheduling', 'studio_cancellation_policies', 'DELETE');
