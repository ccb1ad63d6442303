-- Drops the per-notification retry time: deferred notifications become due.
ALTER TABLE appointment_notifications DROP COLUMN next_attempt_at;
