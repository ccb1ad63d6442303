-- The payment status of an individual or trial class's one client, kept on
-- the appointment as a group class keeps it per participant; billing sets
-- it through SetPaymentStatus. Expand only: a constant default adds the
-- column without rewriting a partition, and running code that does not
-- know it keeps working.
ALTER TABLE appointments ADD COLUMN payment_status text NOT NULL DEFAULT 'pending'
    CONSTRAINT appointments_payment_status_check
    CHECK (payment_status IN ('pending', 'paid', 'refunded'));

-- validate:
-- SELECT EXISTS (SELECT 1 FROM information_schema.columns
--                WHERE table_schema = current_schema() AND table_name = 'appointments'
--                  AND column_name = 'payment_status')
--    AND EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'appointments_payment_status_check');
