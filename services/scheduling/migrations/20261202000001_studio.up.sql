-- The studio an appointment is at, and the studio's roster. A booking at a
-- studio records its id (checked against the trainer's contract in tenancy
-- by the handler); the studio's managers read the studio's sessions and
-- their participants through `fitflow.managed_studio`, which the handler
-- sets in the transaction only after checking the token's studios (as
-- `fitflow.granted_client_id` works for clients). The roster reads only:
-- no policy here admits a manager's write.
--
-- The new column is NULL everywhere, so the partial index's build reads
-- each partition once and writes nothing.

ALTER TABLE appointments ADD COLUMN studio_id uuid;
CREATE INDEX appointments_studio_idx ON appointments (studio_id, start_time, id)
    WHERE studio_id IS NOT NULL;

-- Whether `studio` is the one whose roster the handler admitted the caller to.
CREATE FUNCTION caller_manages_studio(studio uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT studio IS NOT NULL
       AND studio::text = NULLIF(current_setting('fitflow.managed_studio', true), '')
$$;

CREATE POLICY appointments_studio_manager ON appointments FOR SELECT
    USING (caller_manages_studio(studio_id));

CREATE POLICY appointment_participants_studio_manager ON appointment_participants FOR SELECT
    USING (EXISTS (SELECT 1 FROM appointments a
                   WHERE a.id = appointment_participants.appointment_id
                     AND a.start_time = appointment_participants.start_time
                     AND caller_manages_studio(a.studio_id)));

CREATE POLICY class_types_studio_manager ON class_types FOR SELECT
    USING (NULLIF(current_setting('fitflow.managed_studio', true), '') IS NOT NULL
           AND EXISTS (SELECT 1 FROM appointments a
                       WHERE a.class_type_id = class_types.id
                         AND caller_manages_studio(a.studio_id)));

-- validate:
-- SELECT EXISTS (SELECT 1 FROM information_schema.columns
--                WHERE table_schema = 'scheduling' AND table_name = 'appointments'
--                  AND column_name = 'studio_id')
--    AND to_regclass('appointments_studio_idx') IS NOT NULL
--    AND (SELECT count(*) FROM pg_policy WHERE polname IN ('appointments_studio_manager',
--         'appointment_participants_studio_manager', 'class_types_studio_manager')) = 3
--    AND NOT caller_manages_studio(NULL);
