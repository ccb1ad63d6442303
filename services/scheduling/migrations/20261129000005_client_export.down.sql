-- Drops the indexes of a client's export.
DROP INDEX appointment_participants_client_idx;
DROP INDEX appointments_client_idx;
