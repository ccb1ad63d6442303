-- Drops cancellation policies and the fee columns of appointments.
ALTER TABLE appointments DROP COLUMN client_attended;
ALTER TABLE appointments DROP COLUMN fee_waived;
ALTER TABLE appointments DROP COLUMN penalty_fee;
ALTER TABLE appointments DROP COLUMN late_cancel;
DROP TABLE cancellation_policies;
