-- Drops the class type search functions (the index using one goes first,
-- in the next migration's down script).
DROP FUNCTION class_type_search_query(text);
DROP FUNCTION class_type_search(text, text);
