-- Drops the series' rules; participants' rows no longer follow a moved class.
ALTER TABLE appointment_participants
    DROP CONSTRAINT appointment_participants_appointment_id_start_time_fkey,
    ADD CONSTRAINT appointment_participants_appointment_id_start_time_fkey
        FOREIGN KEY (appointment_id, start_time) REFERENCES appointments (id, start_time);
DROP TABLE appointment_series;
