-- Session packs (issue 13): a client buys a pack of N sessions as a line of
-- a client invoice (`pack_sessions`, `pack_expires_on`); issuing the invoice
-- writes the pack to `session_packs`, and DraftClientInvoice draws the
-- client's held sessions from it (a 0.00 line naming the pack,
-- `drawn_pack_id`) instead of billing them. `session_pack_draws` holds each
-- session drawn, once (its primary key), with the draft that drew it:
-- voiding that invoice, or dropping the line from the draft, deletes the
-- draw and gives the session back (`used` goes down in the same
-- transaction). `used` never exceeds `sessions` (a CHECK, the last wall
-- behind the draft's row lock on the client's packs). A pack sold on an
-- invoice that is voided is cancelled (refused while a session is drawn
-- from it). Expand only: new nullable columns and new tables.

ALTER TABLE invoice_lines
    ADD COLUMN pack_sessions integer CHECK (pack_sessions BETWEEN 1 AND 1000),
    ADD COLUMN pack_expires_on date,
    ADD COLUMN drawn_pack_id uuid,
    ADD CONSTRAINT invoice_lines_pack CHECK ((pack_sessions IS NULL) = (pack_expires_on IS NULL)
        AND (pack_sessions IS NULL OR appointment_id IS NULL)),
    ADD CONSTRAINT invoice_lines_drawn CHECK (drawn_pack_id IS NULL
        OR (charge = 'session' AND amount = 0));

CREATE TABLE session_packs (
    id          uuid        PRIMARY KEY,
    issuer_id   uuid        NOT NULL,
    client_id   uuid        NOT NULL,
    sessions    integer     NOT NULL CHECK (sessions BETWEEN 1 AND 1000),
    used        integer     NOT NULL DEFAULT 0 CHECK (used >= 0 AND used <= sessions),
    expires_on  date        NOT NULL,
    invoice_id  uuid        NOT NULL REFERENCES invoices (id),
    position    integer     NOT NULL,
    state       text        NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'cancelled')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (invoice_id, position)
);
CREATE INDEX session_packs_client_idx ON session_packs (issuer_id, client_id, expires_on);

CREATE TABLE session_pack_draws (
    appointment_id uuid        NOT NULL,
    client_id      uuid        NOT NULL,
    pack_id        uuid        NOT NULL REFERENCES session_packs (id),
    -- Deferred: a draft draws before its row is written.
    invoice_id     uuid        NOT NULL REFERENCES invoices (id) DEFERRABLE INITIALLY DEFERRED,
    issuer_id      uuid        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (appointment_id, client_id)
);
CREATE INDEX session_pack_draws_invoice_idx ON session_pack_draws (invoice_id);
CREATE INDEX session_pack_draws_pack_idx ON session_pack_draws (pack_id);

-- A pack is never deleted (the financial record); a draw is taken or given
-- back, never changed.
REVOKE DELETE, TRUNCATE ON session_packs FROM fitflow_billing;
REVOKE UPDATE, TRUNCATE ON session_pack_draws FROM fitflow_billing;

ALTER TABLE session_packs ENABLE ROW LEVEL SECURITY;
ALTER TABLE session_packs FORCE ROW LEVEL SECURITY;
CREATE POLICY session_packs_system ON session_packs USING (current_user = 'fitflow_billing_system');
CREATE POLICY session_packs_issuer ON session_packs
    USING (caller_acts_for(issuer_id)) WITH CHECK (caller_acts_for(issuer_id));

ALTER TABLE session_pack_draws ENABLE ROW LEVEL SECURITY;
ALTER TABLE session_pack_draws FORCE ROW LEVEL SECURITY;
CREATE POLICY session_pack_draws_system ON session_pack_draws
    USING (current_user = 'fitflow_billing_system');
CREATE POLICY session_pack_draws_issuer ON session_pack_draws
    USING (caller_acts_for(issuer_id)) WITH CHECK (caller_acts_for(issuer_id));

-- validate:
-- SELECT (SELECT relforcerowsecurity FROM pg_class WHERE oid = 'session_packs'::regclass)
--    AND (SELECT relforcerowsecurity FROM pg_class WHERE oid = 'session_pack_draws'::regclass)
--    AND EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'invoice_lines_pack')
--    AND NOT has_table_privilege('fitflow_billing', 'session_packs', 'DELETE')
--    AND NOT has_table_privilege('fitflow_billing', 'session_pack_draws', 'UPDATE')
