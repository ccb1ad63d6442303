-- Drops the tenancy tables. Tables go before the functions their policies
-- and generated columns use. Nothing outside this schema refers to them
-- (other services hold tenancy ids only).
DROP TABLE rate_versions;
DROP TABLE contracts;
DROP TABLE studios;
DROP FUNCTION caller_manages_studio(uuid);
DROP FUNCTION search_fold(text);
DROP TABLE team_links;
DROP TABLE trainers;
DROP FUNCTION caller_acts_for(uuid);
