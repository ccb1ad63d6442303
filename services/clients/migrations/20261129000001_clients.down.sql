-- Drops the clients tables. The policies on clients read client_permissions,
-- so they go before it; tables go before the functions their policies and
-- triggers use. Other services hold client ids only.
DROP TABLE client_share_history;
DROP POLICY clients_read ON clients;
DROP POLICY clients_write ON clients;
DROP TABLE client_permissions;
DROP TABLE clients;
DROP FUNCTION clients_owner_change_guard();
DROP FUNCTION caller_acts_for(uuid);
