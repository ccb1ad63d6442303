-- The reminder sweep's window: scheduled appointments starting in
-- (now, now + lead]. Without it every sweep reads each current partition
-- whole (the trainer and client indexes lead with other columns); with it,
-- an index range scan per partition over scheduled sessions only (held and
-- cancelled ones, most of the past, are not in it). Made on the partitioned
-- table, so every partition gets its own, and ensure_year_partition's
-- ATTACH gives one to each partition created later.
--
-- PostgreSQL cannot build an index on a partitioned table CONCURRENTLY; the
-- build holds off writes to appointments while it runs (about 0.1 s per
-- 10^5 scheduled rows). Were that too long, build each partition's index
-- CONCURRENTLY first and ATTACH them to an index made ON ONLY appointments.
CREATE INDEX appointments_upcoming_idx ON appointments (start_time)
    WHERE status = 'scheduled';

-- validate:
-- SELECT coalesce((SELECT indisvalid FROM pg_index
--                  WHERE indexrelid = to_regclass('appointments_upcoming_idx')), false)
--    AND NOT EXISTS (
--        SELECT 1 FROM pg_inherits i
--        WHERE i.inhparent = 'appointments'::regclass
--          AND NOT EXISTS (SELECT 1 FROM pg_index x
--                          JOIN pg_inherits ii ON ii.inhrelid = x.indexrelid
--                          WHERE x.indrelid = i.inhrelid
--                            AND ii.inhparent = 'appointments_upcoming_idx'::regclass));
