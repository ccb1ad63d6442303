-- Credit notes: the only correction of an issued invoice. They live beside
-- invoices (same lines and taxes), marked kind = 'credit_note' with the
-- invoice they correct, numbered in their own series (invoice_series.doc_type
-- 'credit_note'). Expand-only: existing rows become kind 'invoice'.

ALTER TABLE invoices ADD COLUMN kind text NOT NULL DEFAULT 'invoice'
    CHECK (kind IN ('invoice', 'credit_note'));
ALTER TABLE invoices ADD COLUMN credit_of uuid REFERENCES invoices (id);
ALTER TABLE invoices ADD CONSTRAINT invoices_credit_refers
    CHECK ((kind = 'credit_note') = (credit_of IS NOT NULL));
CREATE INDEX invoices_credit_of_idx ON invoices (credit_of) WHERE credit_of IS NOT NULL;

-- Numbers are unique per issuer and document type.
DROP INDEX invoices_number_per_issuer;
CREATE UNIQUE INDEX invoices_number_per_issuer ON invoices (issuer_id, kind, number) WHERE number IS NOT NULL;

-- An issued document never changes: its kind and what it credits neither.
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

-- validate:
-- SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'invoices_credit_refers')
