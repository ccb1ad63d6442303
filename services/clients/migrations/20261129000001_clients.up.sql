-- Client records, their shares and the history of their sharing. Every
-- personal field is a sealed bytea (AES-256-GCM under the client's own key,
-- which lives in OpenBao only); lookups use keyed blind indexes. The
-- platform's migrations create data_keys (the service's blind-index key),
-- audit_outbox and idempotency_keys beside them.

CREATE TABLE clients (
    id                uuid        PRIMARY KEY,
    trainer_id        uuid        NOT NULL,  -- the owner (a tenancy trainer id)
    first_name        bytea       NOT NULL,
    last_name         bytea       NOT NULL,
    email             bytea,
    phone             bytea,
    date_of_birth     bytea,
    emergency_contact bytea,
    medical_info      bytea,
    goals             bytea,
    address           bytea,
    email_index       bytea,                 -- HMAC of (owner, normalised email)
    phone_index       bytea,                 -- HMAC of (owner, phone digits)
    name_tokens       integer[]   NOT NULL DEFAULT '{}',  -- 24-bit prefix hashes, padded
    preferences       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    source            text        NOT NULL DEFAULT ''
                      CHECK (source IN ('', 'referral', 'walk_in', 'online')),
    status            text        NOT NULL DEFAULT 'active'
                      CHECK (status IN ('active', 'inactive', 'archived')),
    consent_version   text,
    consent_time      timestamptz,
    version           bigint      NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz,
    CONSTRAINT clients_consent_whole CHECK ((consent_version IS NULL) = (consent_time IS NULL)),
    -- No health information without recorded consent.
    CONSTRAINT clients_medical_needs_consent CHECK (medical_info IS NULL OR consent_version IS NOT NULL)
);
CREATE INDEX clients_owner_idx ON clients (trainer_id, created_at, id);
CREATE INDEX clients_email_idx ON clients (email_index) WHERE email_index IS NOT NULL;
CREATE INDEX clients_phone_idx ON clients (phone_index) WHERE phone_index IS NOT NULL;
CREATE INDEX clients_name_tokens_idx ON clients USING gin (name_tokens);

-- Shares. owner_id repeats clients.trainer_id (kept equal by TransferClient)
-- so that this table's policies need not read clients, whose policy reads
-- this table: PostgreSQL refuses policies that recurse.
CREATE TABLE client_permissions (
    client_id        uuid        NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    trainer_id       uuid        NOT NULL,
    owner_id         uuid        NOT NULL,
    permission_level text        NOT NULL CHECK (permission_level IN ('read', 'write', 'admin')),
    granted_by       uuid        NOT NULL,
    granted_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, trainer_id),
    CONSTRAINT client_permissions_not_owner CHECK (trainer_id <> owner_id)
);
CREATE INDEX client_permissions_trainer_idx ON client_permissions (trainer_id);

-- Every share granted, changed or revoked and every transfer, for the
-- client's export (who could see them, and when). Insert-only.
CREATE TABLE client_share_history (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id        uuid        NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    trainer_id       uuid        NOT NULL,
    event            text        NOT NULL
                     CHECK (event IN ('granted', 'changed', 'revoked', 'transferred_from', 'transferred_to')),
    permission_level text        CHECK (permission_level IN ('read', 'write', 'admin')),
    actor_id         uuid        NOT NULL,
    occurred_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX client_share_history_client_idx ON client_share_history (client_id, id);

REVOKE DELETE, TRUNCATE ON clients FROM fitflow_clients;
REVOKE UPDATE, DELETE, TRUNCATE ON client_share_history FROM fitflow_clients, fitflow_clients_system;

-- Whether the calling user acts for `trainer`: it is them, or a trainer
-- below them in their team (the token's team claims, fitflow.supervised).
CREATE FUNCTION caller_acts_for(trainer uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT trainer::text = current_setting('fitflow.user_id', true)
        OR trainer::text = ANY (string_to_array(NULLIF(current_setting('fitflow.supervised', true), ''), ','))
$$;

ALTER TABLE clients ENABLE ROW LEVEL SECURITY;
ALTER TABLE clients FORCE ROW LEVEL SECURITY;
CREATE POLICY clients_system ON clients
    USING (current_user = 'fitflow_clients_system');
CREATE POLICY clients_read ON clients FOR SELECT
    USING (caller_acts_for(trainer_id)
           OR EXISTS (SELECT 1 FROM client_permissions p
                      WHERE p.client_id = id
                        AND p.trainer_id::text = current_setting('fitflow.user_id', true)));
CREATE POLICY clients_create ON clients FOR INSERT
    WITH CHECK (caller_acts_for(trainer_id));
CREATE POLICY clients_write ON clients FOR UPDATE
    USING (caller_acts_for(trainer_id)
           OR EXISTS (SELECT 1 FROM client_permissions p
                      WHERE p.client_id = id
                        AND p.trainer_id::text = current_setting('fitflow.user_id', true)
                        AND p.permission_level IN ('write', 'admin')))
    WITH CHECK (caller_acts_for(trainer_id)
           OR EXISTS (SELECT 1 FROM client_permissions p
                      WHERE p.client_id = id
                        AND p.trainer_id::text = current_setting('fitflow.user_id', true)
                        AND p.permission_level IN ('write', 'admin')));

-- Only someone who acts for the current owner moves a client (a grantee
-- with WRITE must not make themselves the owner).
CREATE FUNCTION clients_owner_change_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.trainer_id <> OLD.trainer_id
       AND current_user <> 'fitflow_clients_system'
       AND NOT (caller_acts_for(OLD.trainer_id) AND caller_acts_for(NEW.trainer_id)) THEN
        RAISE EXCEPTION 'only someone acting for both trainers moves a client'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER clients_owner_change_guard BEFORE UPDATE OF trainer_id ON clients
    FOR EACH ROW EXECUTE FUNCTION clients_owner_change_guard();

ALTER TABLE client_permissions ENABLE ROW LEVEL SECURITY;
ALTER TABLE client_permissions FORCE ROW LEVEL SECURITY;
CREATE POLICY client_permissions_system ON client_permissions
    USING (current_user = 'fitflow_clients_system');
CREATE POLICY client_permissions_read ON client_permissions FOR SELECT
    USING (trainer_id::text = current_setting('fitflow.user_id', true) OR caller_acts_for(owner_id));
CREATE POLICY client_permissions_grant ON client_permissions FOR INSERT
    WITH CHECK (caller_acts_for(owner_id));
CREATE POLICY client_permissions_change ON client_permissions FOR UPDATE
    USING (caller_acts_for(owner_id)) WITH CHECK (caller_acts_for(owner_id));
CREATE POLICY client_permissions_revoke ON client_permissions FOR DELETE
    USING (caller_acts_for(owner_id) OR trainer_id::text = current_setting('fitflow.user_id', true));

ALTER TABLE client_share_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE client_share_history FORCE ROW LEVEL SECURITY;
CREATE POLICY client_share_history_system ON client_share_history
    USING (current_user = 'fitflow_clients_system');
CREATE POLICY client_share_history_read ON client_share_history FOR SELECT
    USING (EXISTS (SELECT 1 FROM clients c WHERE c.id = client_id));
CREATE POLICY client_share_history_write ON client_share_history FOR INSERT
    WITH CHECK (EXISTS (SELECT 1 FROM clients c WHERE c.id = client_id));

-- validate:
-- SELECT to_regclass('clients') IS NOT NULL AND to_regclass('client_permissions') IS NOT NULL
--    AND to_regclass('clients_name_tokens_idx') IS NOT NULL
--    AND (SELECT bool_and(relforcerowsecurity) FROM pg_class
--         WHERE oid IN ('clients'::regclass, 'client_permissions'::regclass,
--                       'client_share_history'::regclass))
--    AND NOT has_table_privilege('fitflow_clients', 'clients', 'DELETE');
