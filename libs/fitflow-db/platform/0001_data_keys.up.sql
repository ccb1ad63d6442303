-- Platform table of every service schema: wrapped per-tenant data keys.
-- The runtime role may read and add keys, never change or delete them; a
-- tenant's keys are shredded only through shred_tenant_keys (one tenant at a
-- time, as the schema owner), so one stray DELETE cannot destroy every key.
CREATE TABLE data_keys (
    tenant_id   uuid        NOT NULL,
    purpose     text        NOT NULL CHECK (purpose IN ('seal', 'index')),
    version     integer     NOT NULL,
    wrapped_key text        NOT NULL, -- transit ciphertext of the data key ("vault:vN:...")
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, purpose, version)
);
