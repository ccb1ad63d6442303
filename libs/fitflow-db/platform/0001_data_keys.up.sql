-- Platform table of every service schema: wrapped per-tenant data keys.
-- The runtime and system roles may read and add keys, never change or
-- delete them: a tenant's keys are shredded only through shred_tenant_keys,
-- one tenant at a time, so one stray DELETE cannot destroy every tenant's keys.
CREATE TABLE data_keys (
    tenant_id   uuid        NOT NULL,
    purpose     text        NOT NULL CHECK (purpose IN ('seal', 'index')),
    version     integer     NOT NULL,
    wrapped_key text        NOT NULL, -- transit ciphertext of the data key ("vault:vN:...")
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, purpose, version)
);

DO $$
BEGIN
    EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON data_keys FROM %I, %I',
                   'fitflow_' || current_schema(), 'fitflow_' || current_schema() || '_system');
END $$;

-- Crypto-shredding of one tenant: runs as the schema owner; search_path is
-- pinned so a caller cannot redirect data_keys to another table.
CREATE FUNCTION shred_tenant_keys(tenant uuid) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    deleted bigint;
BEGIN
    EXECUTE format('DELETE FROM %I.data_keys WHERE tenant_id = $1',
                   regexp_replace(current_user, '^fitflow_(.*)_owner$', '\1'))
        USING tenant;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END $$;
REVOKE ALL ON FUNCTION shred_tenant_keys(uuid) FROM PUBLIC;

DO $$
BEGIN
    EXECUTE format('GRANT EXECUTE ON FUNCTION shred_tenant_keys(uuid) TO %I, %I',
                   'fitflow_' || current_schema(), 'fitflow_' || current_schema() || '_system');
END $$;

-- validate:
-- SELECT to_regclass('data_keys') IS NOT NULL
--    AND NOT has_table_privilege('fitflow_' || current_schema(), 'data_keys', 'DELETE')
--    AND NOT has_table_privilege('fitflow_' || current_schema(), 'data_keys', 'UPDATE')
--    AND has_table_privilege('fitflow_' || current_schema(), 'data_keys', 'INSERT');
