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
        OR (OLD.status = 'void' AND NEW.status <> 'void')) THEN
        RAISE EXCEPTION 'an issued invoice never changes'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'invoices_issued_immutable';
    END IF;
    RETURN NEW;
END
$$;
DROP INDEX invoices_number_per_issuer;
CREATE UNIQUE INDEX invoices_number_per_issuer ON invoices (issuer_id, number) WHERE number IS NOT NULL;
DROP INDEX invoices_credit_of_idx;
ALTER TABLE invoices DROP CONSTRAINT invoices_credit_refers;
ALTER TABLE invoices DROP COLUMN credit_of;
ALTER TABLE invoices DROP COLUMN kind;
