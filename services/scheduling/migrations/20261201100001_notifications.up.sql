-- Mail to clients about their appointments (booking confirmation, waitlist
-- promotion, cancellation, reminder), recorded as intents in the transaction
-- that books, promotes or cancels (or by the reminder sweep) and delivered by
-- the service's notification relay: GetContact (purpose OPERATIONS), the
-- platform mailer, then the row is settled (sent, skipped or failed) with an
-- audit event in one transaction. A settled row is never sent again, so a
-- restart re-sends nothing; the only window for a second copy is between the
-- SMTP server's acceptance and the settling commit.
--
-- One intent per (appointment, client, kind, occurrence): `occurrence` is the
-- participant's `position` for the events of a group class place (a client
-- who leaves and joins again holds a new place, and hears about it), and 0
-- for an individual appointment's events and for every reminder — so two
-- sweeps, two replicas or a restart record one reminder, whatever races.
CREATE TABLE appointment_notifications (
    id             uuid        PRIMARY KEY,
    appointment_id uuid        NOT NULL,
    client_id      uuid        NOT NULL,
    -- The appointment's trainer, for row-level security and the audit tenant.
    trainer_id     uuid        NOT NULL,
    kind           text        NOT NULL
                   CHECK (kind IN ('booked', 'promoted', 'cancelled', 'reminder')),
    occurrence     bigint      NOT NULL DEFAULT 0,
    status         text        NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'sent', 'skipped', 'failed')),
    -- Why it was skipped or failed (a fixed word, never a value): no_email,
    -- client_not_found, no_longer_due, invalid_address, refused, gave_up.
    outcome        text        NOT NULL DEFAULT '',
    attempts       integer     NOT NULL DEFAULT 0,
    -- The last transient failure (a gRPC code or an SMTP failure kind).
    last_error     text        NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    settled_at     timestamptz,
    CONSTRAINT appointment_notifications_once UNIQUE (appointment_id, client_id, kind, occurrence),
    CONSTRAINT appointment_notifications_settled CHECK ((status = 'pending') = (settled_at IS NULL))
);
-- The relay's queue: pending intents, oldest first.
CREATE INDEX appointment_notifications_pending_idx
    ON appointment_notifications (created_at, id) WHERE status = 'pending';

-- The trainer's IANA time zone as tenancy last told scheduling (read with
-- the user's token when a client is booked), so the relay, which has no user
-- token, writes local times. A cache of tenancy's profile, not a record:
-- tenancy audits the zone's changes. A trainer never seen here is UTC.
CREATE TABLE trainer_zones (
    trainer_id uuid        PRIMARY KEY,
    time_zone  text        NOT NULL CHECK (time_zone <> '' AND length(time_zone) <= 64),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Users' transactions only record intents; settling is the system role's.
REVOKE UPDATE, DELETE, TRUNCATE ON appointment_notifications FROM fitflow_scheduling;
REVOKE DELETE, TRUNCATE ON trainer_zones FROM fitflow_scheduling;

ALTER TABLE appointment_notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE appointment_notifications FORCE ROW LEVEL SECURITY;
CREATE POLICY appointment_notifications_system ON appointment_notifications
    USING (current_user = 'fitflow_scheduling_system');
CREATE POLICY appointment_notifications_trainer ON appointment_notifications
    USING (caller_acts_for(trainer_id)) WITH CHECK (caller_acts_for(trainer_id));

ALTER TABLE trainer_zones ENABLE ROW LEVEL SECURITY;
ALTER TABLE trainer_zones FORCE ROW LEVEL SECURITY;
CREATE POLICY trainer_zones_system ON trainer_zones
    USING (current_user = 'fitflow_scheduling_system');
CREATE POLICY trainer_zones_trainer ON trainer_zones
    USING (caller_acts_for(trainer_id)) WITH CHECK (caller_acts_for(trainer_id));

-- validate:
-- SELECT to_regclass('appointment_notifications') IS NOT NULL
--    AND to_regclass('trainer_zones') IS NOT NULL
--    AND EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'appointment_notifications_once')
--    AND (SELECT bool_and(relforcerowsecurity) FROM pg_class
--         WHERE oid IN ('appointment_notifications'::regclass, 'trainer_zones'::regclass))
--    AND NOT has_table_privilege('fitflow_scheduling', 'appointment_notifications', 'UPDATE');
