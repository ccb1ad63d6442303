-- Studios are written rarely and searched often: their search index takes
-- each change directly instead of through GIN's pending list, which every
-- search must scan until a vacuum merges it (after a bulk load of 100,000
-- studios, 508 pages and about 10 ms a search). The list already pending is
-- merged now.
ALTER INDEX studios_search_idx SET (fastupdate = off);
SELECT gin_clean_pending_list('studios_search_idx'::regclass);

-- validate:
-- SELECT EXISTS (SELECT 1 FROM pg_class
--                WHERE oid = 'studios_search_idx'::regclass
--                  AND 'fastupdate=off' = ANY (reloptions))
