-- A client's appointments and class places, found for their export.
CREATE INDEX appointments_client_idx ON appointments (client_id, start_time) WHERE client_id IS NOT NULL;
CREATE INDEX appointment_participants_client_idx ON appointment_participants (client_id);

-- validate:
-- SELECT to_regclass('appointments_client_idx') IS NOT NULL
--    AND to_regclass('appointment_participants_client_idx') IS NOT NULL;
