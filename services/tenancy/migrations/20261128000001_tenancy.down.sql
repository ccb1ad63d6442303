-- Drops the tenancy tables. Refused by nothing: tenancy's rows are owned by
-- no other schema (other services hold their ids only).
DROP TABLE rate_versions;
DROP TABLE contracts;
DROP FUNCTION caller_manages_studio(uuid);
DROP TABLE studios;
DROP FUNCTION search_fold(text);
DROP FUNCTION caller_acts_for(uuid);
DROP TABLE team_links;
DROP TABLE trainers;
