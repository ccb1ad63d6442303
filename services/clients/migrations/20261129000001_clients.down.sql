-- Drops the clients tables. Tables go before the functions their policies
-- and triggers use. Other services hold client ids only.
DROP TABLE client_share_history;
DROP TABLE client_permissions;
DROP TABLE clients;
DROP FUNCTION clients_owner_change_guard();
DROP FUNCTION caller_acts_for(uuid);
