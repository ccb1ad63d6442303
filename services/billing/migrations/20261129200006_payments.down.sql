DROP TABLE payments;
DROP INDEX invoices_open_due_idx;
ALTER TABLE invoices DROP CONSTRAINT invoices_void_unpaid;
ALTER TABLE invoices DROP CONSTRAINT invoices_amount_paid;
ALTER TABLE invoices DROP COLUMN amount_paid;
-- Back to the statuses the previous release knows: every payment state of
-- an issued invoice is 'issued' to it.
-- The owner running this is subject to the table's forced row-level
-- security, which would hide every row; it lifts it for this one update.
ALTER TABLE invoices NO FORCE ROW LEVEL SECURITY;
UPDATE invoices SET status = 'issued' WHERE status IN ('partially_paid', 'paid', 'overdue');
ALTER TABLE invoices FORCE ROW LEVEL SECURITY;
ALTER TABLE invoices DROP CONSTRAINT invoices_status_check;
ALTER TABLE invoices ADD CONSTRAINT invoices_status_check
    CHECK (status IN ('draft', 'issued', 'void'));
