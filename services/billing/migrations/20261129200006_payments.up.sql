-- Payments and refunds of client invoices, and the payment-aware statuses
-- of an issued invoice. Expand-only: existing invoices keep their status and
-- start with nothing paid.
--
-- An issued invoice's status now also says where its payment stands:
-- 'issued' (nothing paid, not past due), 'partially_paid', 'paid' (the
-- balance is 0.00 and something was paid), 'overdue' (past its due date
-- with a balance above 0.00, partly paid or not). `amount_paid` is the net
-- of its payments and refunds; the balance is its total, less its credit
-- notes' totals, less `amount_paid`, never below 0.00 (overpayments are
-- refused). Both change only with a payment, a refund or the overdue sweep.

ALTER TABLE invoices DROP CONSTRAINT invoices_status_check;
ALTER TABLE invoices ADD CONSTRAINT invoices_status_check
    CHECK (status IN ('draft', 'issued', 'partially_paid', 'paid', 'overdue', 'void'));
ALTER TABLE invoices ADD COLUMN amount_paid numeric(12,2) NOT NULL DEFAULT 0;
ALTER TABLE invoices ADD CONSTRAINT invoices_amount_paid
    CHECK (amount_paid >= 0 AND (amount_paid = 0 OR (kind = 'invoice' AND amount_paid <= total)));
-- A void invoice has nothing paid on it (refund first).
ALTER TABLE invoices ADD CONSTRAINT invoices_void_unpaid
    CHECK (status <> 'void' OR amount_paid = 0);
CREATE INDEX invoices_open_due_idx ON invoices (due_date)
    WHERE kind = 'invoice' AND status IN ('issued', 'partially_paid');

-- Movements of money on an invoice: a payment (amount > 0) or a refund of
-- one payment (amount < 0, `refund_of` naming it). Never changed or
-- deleted: a mistake is corrected by a refund.
CREATE TABLE payments (
    id              uuid          PRIMARY KEY,
    invoice_id      uuid          NOT NULL REFERENCES invoices (id),
    issuer_id       uuid          NOT NULL,
    kind            text          NOT NULL CHECK (kind IN ('payment', 'refund')),
    refund_of       uuid          REFERENCES payments (id),
    method          text          NOT NULL CHECK (method IN ('cheque', 'e_transfer', 'cash', 'credit_card')),
    amount          numeric(12,2) NOT NULL,
    currency        text          NOT NULL CHECK (currency = 'CAD'),
    reference       text          NOT NULL DEFAULT '',
    paid_on         date          NOT NULL,
    bank_account_id uuid          REFERENCES bank_accounts (id),
    reason          text          NOT NULL DEFAULT '',
    recorded_by     uuid          NOT NULL,
    created_at      timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT payments_sign CHECK (
        (kind = 'payment' AND amount > 0 AND refund_of IS NULL)
        OR (kind = 'refund' AND amount < 0 AND refund_of IS NOT NULL))
);
CREATE INDEX payments_invoice_idx ON payments (invoice_id, created_at, id);
CREATE INDEX payments_refund_of_idx ON payments (refund_of) WHERE refund_of IS NOT NULL;

REVOKE UPDATE, DELETE, TRUNCATE ON payments FROM fitflow_billing;

ALTER TABLE payments ENABLE ROW LEVEL SECURITY;
ALTER TABLE payments FORCE ROW LEVEL SECURITY;
CREATE POLICY payments_system ON payments USING (current_user = 'fitflow_billing_system');
CREATE POLICY payments_issuer ON payments
    USING (caller_acts_for(issuer_id)) WITH CHECK (caller_acts_for(issuer_id));

-- validate:
-- SELECT (SELECT relforcerowsecurity FROM pg_class WHERE oid = 'payments'::regclass)
--    AND NOT has_table_privilege('fitflow_billing', 'payments', 'UPDATE')
--    AND NOT has_table_privilege('fitflow_billing', 'payments', 'DELETE')
--    AND EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'invoices_amount_paid');
