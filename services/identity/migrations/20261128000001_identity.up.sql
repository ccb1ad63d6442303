-- Accounts, sessions and one-time tokens of the identity service. The
-- platform's migrations create data_keys and audit_outbox beside them.

CREATE TABLE users (
    id                  uuid        PRIMARY KEY,
    email               text        NOT NULL,
    email_verified      boolean     NOT NULL DEFAULT false,
    password_hash       text        NOT NULL,
    display_name_sealed bytea       NOT NULL, -- AES-256-GCM, tenant = the user
    roles               text[]      NOT NULL DEFAULT '{trainer}',
    mfa_enabled         boolean     NOT NULL DEFAULT false,
    status              text        NOT NULL DEFAULT 'active'
                                    CHECK (status IN ('active', 'suspended', 'deleted')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    last_login_at       timestamptz,
    metadata            jsonb       NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_email_normalised CHECK (email = lower(btrim(email)))
);

-- A login creates a session; its refresh tokens form one family. Reuse of a
-- spent refresh token revokes the whole session.
CREATE TABLE sessions (
    id           uuid        PRIMARY KEY,
    user_id      uuid        NOT NULL REFERENCES users (id),
    user_agent   text        NOT NULL DEFAULT '',
    client_addr  text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE INDEX sessions_user_idx ON sessions (user_id, created_at DESC);

CREATE TABLE refresh_tokens (
    token_hash bytea       PRIMARY KEY, -- SHA-256 of the opaque token
    session_id uuid        NOT NULL REFERENCES sessions (id),
    expires_at timestamptz NOT NULL,
    spent_at   timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

CREATE TABLE email_verifications (
    token_hash bytea       PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);

-- Row-level security: a user sees only their own rows; the identity service
-- itself (login, refresh: before any token exists), switched to its system
-- role for the transaction, sees all.
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY users_self_or_service ON users
    USING (current_user = 'fitflow_identity_system'
           OR id::text = current_setting('fitflow.user_id', true));

ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY sessions_self_or_service ON sessions
    USING (current_user = 'fitflow_identity_system'
           OR user_id::text = current_setting('fitflow.user_id', true));

-- validate:
-- SELECT to_regclass('users') IS NOT NULL AND to_regclass('email_verifications') IS NOT NULL
--    AND (SELECT relforcerowsecurity FROM pg_class WHERE oid = 'users'::regclass);
