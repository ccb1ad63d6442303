-- MFA (TOTP and recovery codes), login challenges, password resets, shared
-- login rate-limit counters, and the operator's view of accounts.

-- The TOTP secret is sealed with the user's data key (AES-256-GCM, bound to
-- users.mfa_secret of this row). It is set at enrolment and only trusted once
-- mfa_enabled is true (after a first code confirmed it). mfa_last_step is the
-- last accepted 30-second step, so a code is never accepted twice.
ALTER TABLE users
    ADD COLUMN mfa_secret_sealed bytea,
    ADD COLUMN mfa_last_step     bigint;

-- One-time recovery codes, stored as SHA-256 of the normalised code.
CREATE TABLE mfa_recovery_codes (
    code_hash  bytea       PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    used_at    timestamptz
);
CREATE INDEX mfa_recovery_codes_user_idx ON mfa_recovery_codes (user_id);

-- A password was accepted for an MFA account: the second factor is pending.
CREATE TABLE mfa_challenges (
    token_hash      bytea       PRIMARY KEY, -- SHA-256 of the opaque challenge token
    user_id         uuid        NOT NULL REFERENCES users (id),
    user_agent      text        NOT NULL DEFAULT '',
    client_addr     text        NOT NULL DEFAULT '',
    expires_at      timestamptz NOT NULL,
    failed_attempts integer     NOT NULL DEFAULT 0,
    used_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mfa_challenges_user_idx ON mfa_challenges (user_id);

CREATE TABLE password_resets (
    token_hash bytea       PRIMARY KEY, -- SHA-256 of the opaque reset token
    user_id    uuid        NOT NULL REFERENCES users (id),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX password_resets_user_idx ON password_resets (user_id);

-- Failed-login counters shared by every replica. kind is 'account' (key: hex
-- SHA-256 of the normalised email, so unknown emails are limited too and no
-- address is stored in clear) or 'address' (key: the client address).
CREATE TABLE login_attempts (
    kind         text        NOT NULL CHECK (kind IN ('account', 'address')),
    key          text        NOT NULL,
    window_start timestamptz NOT NULL,
    failures     integer     NOT NULL,
    locked_until timestamptz,
    PRIMARY KEY (kind, key)
);

CREATE INDEX email_verifications_user_idx ON email_verifications (user_id);

-- Row-level security for the new tables: the owner or the service itself.
ALTER TABLE mfa_recovery_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE mfa_recovery_codes FORCE ROW LEVEL SECURITY;
CREATE POLICY mfa_recovery_codes_self_or_service ON mfa_recovery_codes
    USING (current_user = 'fitflow_identity_system'
           OR user_id::text = current_setting('fitflow.user_id', true));

ALTER TABLE mfa_challenges ENABLE ROW LEVEL SECURITY;
ALTER TABLE mfa_challenges FORCE ROW LEVEL SECURITY;
CREATE POLICY mfa_challenges_service ON mfa_challenges
    USING (current_user = 'fitflow_identity_system');

ALTER TABLE password_resets ENABLE ROW LEVEL SECURITY;
ALTER TABLE password_resets FORCE ROW LEVEL SECURITY;
CREATE POLICY password_resets_service ON password_resets
    USING (current_user = 'fitflow_identity_system');

ALTER TABLE login_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE login_attempts FORCE ROW LEVEL SECURITY;
CREATE POLICY login_attempts_service ON login_attempts
    USING (current_user = 'fitflow_identity_system');

-- Operators (role in the verified token) manage every account and session.
CREATE POLICY users_operator ON users
    USING ('operator' = ANY (string_to_array(current_setting('fitflow.roles', true), ',')));
CREATE POLICY sessions_operator ON sessions
    USING ('operator' = ANY (string_to_array(current_setting('fitflow.roles', true), ',')));

-- validate:
-- SELECT to_regclass('login_attempts') IS NOT NULL AND to_regclass('mfa_challenges') IS NOT NULL
--    AND to_regclass('password_resets') IS NOT NULL AND to_regclass('mfa_recovery_codes') IS NOT NULL;
