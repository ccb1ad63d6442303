-- Drops the participants of group classes.
DROP TABLE appointment_participants;
DROP SEQUENCE appointment_participants_position;
