-- Drops the scheduling tables (partitions go with their parent), then the
-- functions they use. btree_gist stays: another schema may use it.
DROP TABLE trainer_busy;
DROP TABLE appointments;
DROP TABLE class_types;
DROP FUNCTION ensure_year_partition(integer);
DROP FUNCTION caller_acts_for(uuid);
