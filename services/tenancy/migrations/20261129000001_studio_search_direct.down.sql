-- The search index takes changes through GIN's pending list again.
ALTER INDEX studios_search_idx RESET (fastupdate);
