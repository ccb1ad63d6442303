DROP FUNCTION shred_tenant_keys(uuid);
DROP TABLE data_keys;
