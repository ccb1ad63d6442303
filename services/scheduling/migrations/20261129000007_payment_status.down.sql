-- Drops the payment status of individual and trial classes' clients.
ALTER TABLE appointments DROP COLUMN payment_status;
