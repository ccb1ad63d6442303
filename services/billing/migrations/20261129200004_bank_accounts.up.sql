-- Trainers' bank accounts (where payouts go). The institution, transit and
-- account numbers are sealed in the application under the trainer's data key
-- (AES-256-GCM, associated data binding tenant, table, column and row id;
-- DESIGN.md §4), so PostgreSQL and its backups hold ciphertext only. The last
-- three digits of the account number are kept in clear for the masked form
-- ("••••123") every response shows. Only the trainer themselves sees or
-- changes their accounts (not a supervisor): FORCE row-level security admits
-- the owner's rows only.

CREATE TABLE bank_accounts (
    id                        uuid        PRIMARY KEY,
    trainer_id                uuid        NOT NULL,
    name                      text        NOT NULL CHECK (name <> ''),
    bank_name                 text        NOT NULL CHECK (bank_name <> ''),
    account_type              text        NOT NULL CHECK (account_type IN ('chequing', 'savings')),
    currency                  text        NOT NULL CHECK (currency IN ('CAD', 'USD')),
    is_primary                boolean     NOT NULL DEFAULT false,
    status                    text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'closed')),
    institution_number_sealed bytea       NOT NULL,
    transit_number_sealed     bytea       NOT NULL,
    account_number_sealed     bytea       NOT NULL,
    account_number_last3      text        NOT NULL CHECK (account_number_last3 ~ '^[0-9]{3}$'),
    version                   bigint      NOT NULL DEFAULT 1,
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now(),
    closed_at                 timestamptz,
    CONSTRAINT bank_accounts_closed_recorded CHECK ((status = 'closed') = (closed_at IS NOT NULL)),
    CONSTRAINT bank_accounts_closed_not_primary CHECK (status = 'active' OR NOT is_primary)
);
-- At most one primary account per trainer.
CREATE UNIQUE INDEX bank_accounts_one_primary ON bank_accounts (trainer_id) WHERE is_primary;
CREATE INDEX bank_accounts_trainer_idx ON bank_accounts (trainer_id, created_at, id);

-- Kept for the records: the runtime role never deletes one.
REVOKE DELETE, TRUNCATE ON bank_accounts FROM fitflow_billing;

-- Whether the calling user is `trainer` themselves.
CREATE FUNCTION caller_is(trainer uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT trainer::text = current_setting('fitflow.user_id', true)
$$;

ALTER TABLE bank_accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE bank_accounts FORCE ROW LEVEL SECURITY;
CREATE POLICY bank_accounts_system ON bank_accounts USING (current_user = 'fitflow_billing_system');
CREATE POLICY bank_accounts_owner ON bank_accounts
    USING (caller_is(trainer_id)) WITH CHECK (caller_is(trainer_id));

-- validate:
-- SELECT (SELECT relforcerowsecurity FROM pg_class WHERE oid = 'bank_accounts'::regclass)
--    AND NOT has_table_privilege('fitflow_billing', 'bank_accounts', 'DELETE')
--    AND EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'bank_accounts_one_primary');
