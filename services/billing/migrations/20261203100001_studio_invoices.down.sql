-- Reverts studio invoices. Refused while any studio invoice exists: the
-- down script never deletes a financial record.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM invoices WHERE studio_id IS NOT NULL) THEN
        RAISE EXCEPTION 'studio invoices exist; they are financial records and are not deleted';
    END IF;
END
$$;

DROP POLICY invoice_recipients_studio_manager ON invoice_recipients;
DROP POLICY invoice_taxes_studio_manager ON invoice_taxes;
DROP POLICY invoice_lines_studio_manager ON invoice_lines;
DROP POLICY invoices_studio_manager ON invoices;
DROP FUNCTION caller_manages(uuid);

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

ALTER TABLE billed_items DROP CONSTRAINT billed_items_charge_check;
ALTER TABLE billed_items ADD CONSTRAINT billed_items_charge_check
    CHECK (charge IN ('session', 'late_cancel', 'no_show'));
ALTER TABLE invoice_lines DROP CONSTRAINT invoice_lines_charge_check;
ALTER TABLE invoice_lines ADD CONSTRAINT invoice_lines_charge_check
    CHECK (charge IN ('session', 'late_cancel', 'no_show'));

DROP INDEX invoices_studio_idx;
ALTER TABLE invoices DROP CONSTRAINT invoices_one_payer;
ALTER TABLE invoices DROP COLUMN studio_id;
ALTER TABLE invoices ALTER COLUMN client_id SET NOT NULL;
