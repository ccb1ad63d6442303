-- Drops appointments' studio and the studio managers' read policies; the
-- studios recorded on bookings are lost.
DROP POLICY class_types_studio_manager ON class_types;
DROP POLICY appointment_participants_studio_manager ON appointment_participants;
DROP POLICY appointments_studio_manager ON appointments;
DROP FUNCTION caller_manages_studio(uuid);
DROP INDEX appointments_studio_idx;
ALTER TABLE appointments DROP COLUMN studio_id;
