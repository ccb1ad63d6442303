-- no-transaction
-- Drops the class type search index.
DROP INDEX CONCURRENTLY IF EXISTS class_types_search_idx;
