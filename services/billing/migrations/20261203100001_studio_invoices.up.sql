-- Studio invoices: a contractor trainer bills a studio for the sessions held
-- there (DraftStudioInvoice), at the contract's rate on each session's date.
-- An invoice is addressed to exactly one payer: a client or a studio.
-- Expand only: the running version writes client invoices as before.
--
-- `billed_items` keeps its `client_id` column: for the new charge
-- `studio_rate` it holds the studio where the session was held (a session
-- is owed once, whoever came and whichever studio of a chain the invoice
-- goes to), so its primary key is again "never billed twice". Renaming the
-- column would break the running version; the name is kept.
--
-- A studio's managers read the invoices and credit notes addressed to it
-- (never drafts) through `fitflow.managed_studios`, which billing sets in
-- the reading transaction from the token's studios only (SELECT only).

ALTER TABLE invoices ALTER COLUMN client_id DROP NOT NULL;
ALTER TABLE invoices ADD COLUMN studio_id uuid;
ALTER TABLE invoices ADD CONSTRAINT invoices_one_payer
    CHECK ((client_id IS NULL) <> (studio_id IS NULL));
CREATE INDEX invoices_studio_idx ON invoices (studio_id, created_at DESC, id DESC)
    WHERE studio_id IS NOT NULL;

ALTER TABLE invoice_lines DROP CONSTRAINT invoice_lines_charge_check;
ALTER TABLE invoice_lines ADD CONSTRAINT invoice_lines_charge_check
    CHECK (charge IN ('session', 'late_cancel', 'no_show', 'studio_rate'));
ALTER TABLE billed_items DROP CONSTRAINT billed_items_charge_check;
ALTER TABLE billed_items ADD CONSTRAINT billed_items_charge_check
    CHECK (charge IN ('session', 'late_cancel', 'no_show', 'studio_rate'));

-- An issued document never changes: whom it is addressed to neither.
CREATE OR REPLACE FUNCTION invoices_issued_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'draft' AND (
           NEW.number IS DISTINCT FROM OLD.number
        OR NEW.invoice_date IS DISTINCT FROM OLD.invoice_date
        OR NEW.due_date IS DISTINCT FROM OLD.due_date
        OR NEW.subtotal IS DISTINCT FROM OLD.subtotal
        OR NEW.tax_total IS DISTINCT FROM OLD.tax_total
        OR NEW.total IS DISTINCT FROM OLD.total
        OR NEW.client_id IS DISTINCT FROM OLD.client_id
        OR NEW.studio_id IS DISTINCT FROM OLD.studio_id
        OR NEW.issuer_id IS DISTINCT FROM OLD.issuer_id
        OR NEW.notes IS DISTINCT FROM OLD.notes
        OR NEW.payment_terms_days IS DISTINCT FROM OLD.payment_terms_days
        OR NEW.kind IS DISTINCT FROM OLD.kind
        OR NEW.credit_of IS DISTINCT FROM OLD.credit_of
        OR (OLD.status = 'void' AND NEW.status <> 'void')) THEN
        RAISE EXCEPTION 'an issued invoice never changes'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'invoices_issued_immutable';
    END IF;
    RETURN NEW;
END
$$;

-- Whether the calling user manages `studio` (the token's studios, set by
-- billing for a manager's read; unset for everyone else).
CREATE FUNCTION caller_manages(studio uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT studio::text = ANY (string_to_array(NULLIF(current_setting('fitflow.managed_studios', true), ''), ','))
$$;

CREATE POLICY invoices_studio_manager ON invoices FOR SELECT
    USING (status <> 'draft' AND caller_manages(studio_id));
CREATE POLICY invoice_lines_studio_manager ON invoice_lines FOR SELECT
    USING (EXISTS (SELECT 1 FROM invoices i WHERE i.id = invoice_id
                   AND i.status <> 'draft' AND caller_manages(i.studio_id)));
CREATE POLICY invoice_taxes_studio_manager ON invoice_taxes FOR SELECT
    USING (EXISTS (SELECT 1 FROM invoices i WHERE i.id = invoice_id
                   AND i.status <> 'draft' AND caller_manages(i.studio_id)));
CREATE POLICY invoice_recipients_studio_manager ON invoice_recipients FOR SELECT
    USING (EXISTS (SELECT 1 FROM invoices i WHERE i.id = invoice_id
                   AND i.status <> 'draft' AND caller_manages(i.studio_id)));

-- validate:
-- SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'invoices_one_payer')
--    AND EXISTS (SELECT 1 FROM pg_policy WHERE polname = 'invoices_studio_manager')
--    AND (SELECT relforcerowsecurity FROM pg_class WHERE oid = 'invoices'::regclass)
