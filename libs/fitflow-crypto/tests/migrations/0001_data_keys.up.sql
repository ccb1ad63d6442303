CREATE TABLE data_keys (
    tenant_id   uuid        NOT NULL,
    purpose     text        NOT NULL CHECK (purpose IN ('seal', 'index')),
    version     integer     NOT NULL,
    wrapped_key text        NOT NULL, -- transit ciphertext of the data key ("vault:vN:...")
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, purpose, version)
);
