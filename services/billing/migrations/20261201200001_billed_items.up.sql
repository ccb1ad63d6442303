-- Client invoices drafted from the schedule (DraftClientInvoice): a line
-- may name the appointment it bills and what it charges for, and
-- `billed_items` holds every (appointment, client, charge) billed on an
-- invoice that is not void, at most once: its primary key is the rule "never
-- billed twice", held by the database, so concurrent drafts of one period
-- bill each item once (the second insert waits for the first transaction
-- and finds the key taken). Voiding an invoice, or dropping the line from a
-- draft, deletes its rows in the same transaction, which frees the items.
-- Expand only: new nullable columns and a new table; the running version
-- ignores them.

ALTER TABLE invoice_lines
    ADD COLUMN appointment_id uuid,
    ADD COLUMN charge text CHECK (charge IN ('session', 'late_cancel', 'no_show')),
    ADD CONSTRAINT invoice_lines_billed_item CHECK ((appointment_id IS NULL) = (charge IS NULL));

CREATE TABLE billed_items (
    appointment_id uuid        NOT NULL,
    client_id      uuid        NOT NULL,
    charge         text        NOT NULL CHECK (charge IN ('session', 'late_cancel', 'no_show')),
    -- Deferred: a draft claims its items before its row is written.
    invoice_id     uuid        NOT NULL REFERENCES invoices (id) DEFERRABLE INITIALLY DEFERRED,
    issuer_id      uuid        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (appointment_id, client_id, charge)
);
CREATE INDEX billed_items_invoice_idx ON billed_items (invoice_id);

-- A claim is taken or given back, never changed.
REVOKE UPDATE, TRUNCATE ON billed_items FROM fitflow_billing;

ALTER TABLE billed_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE billed_items FORCE ROW LEVEL SECURITY;
CREATE POLICY billed_items_system ON billed_items USING (current_user = 'fitflow_billing_system');
CREATE POLICY billed_items_issuer ON billed_items
    USING (caller_acts_for(issuer_id)) WITH CHECK (caller_acts_for(issuer_id));

-- validate:
-- SELECT (SELECT relforcerowsecurity FROM pg_class WHERE oid = 'billed_items'::regclass)
--    AND EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'invoice_lines_billed_item')
--    AND NOT has_table_privilege('fitflow_billing', 'billed_items', 'UPDATE')
