-- Drops the series id of appointments.
DROP INDEX appointments_series_idx;
ALTER TABLE appointments DROP COLUMN series_id;
