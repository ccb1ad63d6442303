-- Drops the reminder sweep's index (and with it every partition's).
DROP INDEX appointments_upcoming_idx;
