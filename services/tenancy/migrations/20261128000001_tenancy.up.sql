-- Trainers, teams, studios (chains), contracts and their rate versions.
-- The platform's migrations create data_keys, audit_outbox, idempotency_keys
-- and the command outbox beside them.

CREATE TABLE trainers (
    id                  uuid          PRIMARY KEY,  -- the identity user id
    business_name       text          NOT NULL DEFAULT '',
    license_number      text          NOT NULL DEFAULT '',
    specializations     text[]        NOT NULL DEFAULT '{}',
    bio                 text          NOT NULL DEFAULT '',
    hourly_rate         numeric(12,2) CHECK (hourly_rate >= 0),
    commission_rate     numeric(5,2)  CHECK (commission_rate BETWEEN 0 AND 100),
    time_zone           text          NOT NULL,
    province            text          NOT NULL,
    settings            jsonb         NOT NULL DEFAULT '{}'::jsonb,
    supplier_status     text          CHECK (supplier_status IN ('registered', 'small_supplier')),
    gst_hst_number      text,
    qst_number          text,
    bank_account_sealed bytea,         -- AES-256-GCM under the trainer's key
    version             bigint        NOT NULL DEFAULT 1,
    created_at          timestamptz   NOT NULL DEFAULT now(),
    updated_at          timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT trainers_registered_has_number
        CHECK (supplier_status IS DISTINCT FROM 'registered' OR gst_hst_number IS NOT NULL)
);

-- A trainer's place in a team: at most one leader each. Kept apart from
-- trainers so the acting-for check can read it under row-level security.
CREATE TABLE team_links (
    trainer_id uuid        PRIMARY KEY REFERENCES trainers (id),
    leader_id  uuid        NOT NULL REFERENCES trainers (id),
    joined_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT team_links_not_self CHECK (trainer_id <> leader_id)
);
CREATE INDEX team_links_leader_idx ON team_links (leader_id);

-- Whether the calling user acts for `trainer`: it is them, or they lead a
-- team above it. Team structure is not secret (ids only), so team_links is
-- readable by every caller and this function can read it from inside the
-- policies below without recursing into them.
CREATE FUNCTION caller_acts_for(trainer uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE up (id, depth) AS (
        SELECT trainer, 0
        UNION ALL
        SELECT link.leader_id, up.depth + 1
        FROM team_links link JOIN up ON link.trainer_id = up.id
        WHERE up.depth < 8
    )
    SELECT EXISTS (SELECT 1 FROM up WHERE id::text = current_setting('fitflow.user_id', true))
$$;

-- Lower-cased, with the accents of French (and most Latin) letters removed,
-- so "Montréal" and "montreal" find each other.
CREATE FUNCTION search_fold(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT translate(lower(value),
                     'àâäáãåçéèêëíìîïñóòôöõúùûüýÿ',
                     'aaaaaaceeeeiiiinooooouuuuyy')
$$;

CREATE TABLE studios (
    id                   uuid        PRIMARY KEY,
    parent_studio_id     uuid        REFERENCES studios (id),
    owner_id             uuid        NOT NULL,
    name                 text        NOT NULL,
    business_number      text        NOT NULL DEFAULT '',
    street               text        NOT NULL,
    city                 text        NOT NULL,
    province             text        NOT NULL,
    postal_code          text        NOT NULL,
    country_code         text        NOT NULL DEFAULT 'CA',
    phone                text        NOT NULL DEFAULT '',
    email                text        NOT NULL DEFAULT '',
    website              text        NOT NULL DEFAULT '',
    time_zone            text        NOT NULL,
    payment_frequency    text        CHECK (payment_frequency IN ('weekly', 'biweekly', 'monthly')),
    payment_net_days     integer     CHECK (payment_net_days BETWEEN 0 AND 120),
    payment_method       text        CHECK (payment_method IN ('direct_deposit', 'e_transfer', 'cheque')),
    settings             jsonb       NOT NULL DEFAULT '{}'::jsonb,
    is_headquarters      boolean     NOT NULL DEFAULT false,
    billing_consolidated boolean     NOT NULL DEFAULT true,
    status               text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    bank_account_sealed  bytea,       -- AES-256-GCM under the studio's key
    version              bigint      NOT NULL DEFAULT 1,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at           timestamptz,
    search               tsvector    GENERATED ALWAYS AS
                             (to_tsvector('simple'::regconfig, search_fold(name || ' ' || city))) STORED,
    CONSTRAINT studios_not_own_parent CHECK (parent_studio_id <> id)
);
-- schema-design.md's index strategy: full-text search of studios by GIN.
CREATE INDEX studios_search_idx ON studios USING gin (search);
CREATE INDEX studios_listing_idx ON studios (created_at DESC, id DESC);
CREATE INDEX studios_parent_idx ON studios (parent_studio_id) WHERE parent_studio_id IS NOT NULL;
CREATE INDEX studios_owner_idx ON studios (owner_id);

-- Whether the calling user manages `studio`: they own it or a studio above
-- it in its chain. Studio rows are readable by every caller (the directory),
-- so this reads them from inside policies without recursion.
CREATE FUNCTION caller_manages_studio(studio uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE up (id, owner_id, parent_studio_id, depth) AS (
        SELECT s.id, s.owner_id, s.parent_studio_id, 0 FROM studios s WHERE s.id = studio
        UNION ALL
        SELECT s.id, s.owner_id, s.parent_studio_id, up.depth + 1
        FROM studios s JOIN up ON s.id = up.parent_studio_id
        WHERE up.depth < 8
    )
    SELECT EXISTS (SELECT 1 FROM up WHERE owner_id::text = current_setting('fitflow.user_id', true))
$$;

CREATE TABLE contracts (
    id         uuid        PRIMARY KEY,
    trainer_id uuid        NOT NULL REFERENCES trainers (id),
    studio_id  uuid        NOT NULL REFERENCES studios (id),
    role       text        NOT NULL CHECK (role IN ('contractor', 'employee')),
    state      text        NOT NULL CHECK (state IN ('invited', 'active', 'declined', 'ended')),
    start_date date        NOT NULL,
    end_date   date,
    invited_by uuid        NOT NULL,
    version    bigint      NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT contracts_end_after_start CHECK (end_date IS NULL OR end_date >= start_date),
    CONSTRAINT contracts_ended_has_end CHECK (state <> 'ended' OR end_date IS NOT NULL)
);
-- One live contract per (trainer, studio).
CREATE UNIQUE INDEX contracts_one_live_idx ON contracts (trainer_id, studio_id)
    WHERE state IN ('invited', 'active');
CREATE INDEX contracts_pair_idx ON contracts (trainer_id, studio_id, start_date);
CREATE INDEX contracts_studio_idx ON contracts (studio_id, created_at DESC, id DESC);
CREATE INDEX contracts_trainer_idx ON contracts (trainer_id, created_at DESC, id DESC);

-- Rates by date: a version is never changed or removed (the runtime roles
-- may only insert), so an invoice for last month keeps last month's rates.
CREATE TABLE rate_versions (
    contract_id     uuid          NOT NULL REFERENCES contracts (id),
    effective_date  date          NOT NULL,
    group_rate      numeric(12,2) NOT NULL CHECK (group_rate >= 0),
    individual_rate numeric(12,2) NOT NULL CHECK (individual_rate >= 0),
    trial_rate      numeric(12,2) NOT NULL CHECK (trial_rate >= 0),
    commission_rate numeric(5,2)  NOT NULL CHECK (commission_rate BETWEEN 0 AND 100),
    created_by      uuid          NOT NULL,
    created_at      timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (contract_id, effective_date)
);
REVOKE UPDATE, DELETE, TRUNCATE ON rate_versions FROM fitflow_tenancy, fitflow_tenancy_system;
REVOKE DELETE, TRUNCATE ON trainers, studios, contracts FROM fitflow_tenancy, fitflow_tenancy_system;

-- Row-level security: the handler authorizes first; these are the second
-- wall. The service acting for itself (billing's and identity's internal
-- calls) switches to its system role and sees every row.
ALTER TABLE trainers ENABLE ROW LEVEL SECURITY;
ALTER TABLE trainers FORCE ROW LEVEL SECURITY;
CREATE POLICY trainers_system ON trainers
    USING (current_user = 'fitflow_tenancy_system');
CREATE POLICY trainers_read ON trainers FOR SELECT
    USING (caller_acts_for(id));
CREATE POLICY trainers_create ON trainers FOR INSERT
    WITH CHECK (id::text = current_setting('fitflow.user_id', true));
CREATE POLICY trainers_update ON trainers FOR UPDATE
    USING (caller_acts_for(id)) WITH CHECK (caller_acts_for(id));

ALTER TABLE team_links ENABLE ROW LEVEL SECURITY;
ALTER TABLE team_links FORCE ROW LEVEL SECURITY;
CREATE POLICY team_links_system ON team_links
    USING (current_user = 'fitflow_tenancy_system');
CREATE POLICY team_links_read ON team_links FOR SELECT
    USING (true);

ALTER TABLE studios ENABLE ROW LEVEL SECURITY;
ALTER TABLE studios FORCE ROW LEVEL SECURITY;
CREATE POLICY studios_system ON studios
    USING (current_user = 'fitflow_tenancy_system');
CREATE POLICY studios_directory ON studios FOR SELECT
    USING (true);
CREATE POLICY studios_create ON studios FOR INSERT
    WITH CHECK (owner_id::text = current_setting('fitflow.user_id', true)
                AND (parent_studio_id IS NULL OR caller_manages_studio(parent_studio_id)));
CREATE POLICY studios_update ON studios FOR UPDATE
    USING (caller_manages_studio(id)) WITH CHECK (caller_manages_studio(id));

ALTER TABLE contracts ENABLE ROW LEVEL SECURITY;
ALTER TABLE contracts FORCE ROW LEVEL SECURITY;
CREATE POLICY contracts_system ON contracts
    USING (current_user = 'fitflow_tenancy_system');
CREATE POLICY contracts_parties ON contracts FOR SELECT
    USING (caller_acts_for(trainer_id) OR caller_manages_studio(studio_id));
CREATE POLICY contracts_invite ON contracts FOR INSERT
    WITH CHECK (caller_manages_studio(studio_id));
CREATE POLICY contracts_update ON contracts FOR UPDATE
    USING (caller_acts_for(trainer_id) OR caller_manages_studio(studio_id))
    WITH CHECK (caller_acts_for(trainer_id) OR caller_manages_studio(studio_id));

ALTER TABLE rate_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE rate_versions FORCE ROW LEVEL SECURITY;
CREATE POLICY rate_versions_system ON rate_versions
    USING (current_user = 'fitflow_tenancy_system');
CREATE POLICY rate_versions_parties ON rate_versions FOR SELECT
    USING (EXISTS (SELECT 1 FROM contracts c WHERE c.id = contract_id));
CREATE POLICY rate_versions_set_by_studio ON rate_versions FOR INSERT
    WITH CHECK (EXISTS (SELECT 1 FROM contracts c
                        WHERE c.id = contract_id AND caller_manages_studio(c.studio_id)));

-- validate:
-- SELECT to_regclass('trainers') IS NOT NULL AND to_regclass('rate_versions') IS NOT NULL
--    AND to_regclass('studios_search_idx') IS NOT NULL
--    AND (SELECT bool_and(relforcerowsecurity) FROM pg_class
--         WHERE oid IN ('trainers'::regclass, 'team_links'::regclass, 'studios'::regclass,
--                       'contracts'::regclass, 'rate_versions'::regclass))
--    AND NOT has_table_privilege('fitflow_tenancy', 'rate_versions', 'UPDATE');
