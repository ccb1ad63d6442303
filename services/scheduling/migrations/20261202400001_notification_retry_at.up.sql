-- When a pending notification may be tried again after a failure that
-- concerns it alone (the mail server deferring one recipient, clients
-- failing on one client's record). The relay takes only notifications
-- that are due, so one poisoned notification waits out its own backoff
-- while those queued behind it are delivered; a failure of the mail
-- server or of clients as a whole still pauses the whole queue. NULL: due
-- now (never deferred). Adding a nullable column without a default
-- rewrites nothing.
ALTER TABLE appointment_notifications ADD COLUMN next_attempt_at timestamptz;

-- validate:
-- SELECT EXISTS (SELECT 1 FROM information_schema.columns
--                WHERE table_name = 'appointment_notifications'
--                  AND column_name = 'next_attempt_at'
--                  AND table_schema = current_schema());
