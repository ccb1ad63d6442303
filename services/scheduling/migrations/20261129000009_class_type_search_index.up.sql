-- no-transaction
-- The GIN index of class type search, built concurrently (class types are
-- written while it builds) and written to be run again: an interrupted
-- build leaves an INVALID index, dropped and rebuilt here. Class types are
-- written rarely and searched often, so the index takes each change
-- directly (fastupdate off) instead of through GIN's pending list, which
-- every search would scan until a vacuum merged it (tenancy measured 10 ms
-- a search after a bulk load of studios).
DROP INDEX CONCURRENTLY IF EXISTS class_types_search_idx;
CREATE INDEX CONCURRENTLY class_types_search_idx ON class_types
    USING gin (class_type_search(name, description)) WITH (fastupdate = off);

-- validate:
-- SELECT coalesce((SELECT indisvalid AND indisready FROM pg_index
--                  WHERE indexrelid = to_regclass('class_types_search_idx')), false)
--    AND EXISTS (SELECT 1 FROM pg_class
--                WHERE oid = to_regclass('class_types_search_idx')
--                  AND 'fastupdate=off' = ANY (reloptions));
