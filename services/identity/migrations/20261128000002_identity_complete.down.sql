DROP POLICY sessions_operator ON sessions;
DROP POLICY users_operator ON users;
DROP INDEX email_verifications_user_idx;
DROP TABLE login_attempts;
DROP TABLE password_resets;
DROP TABLE mfa_challenges;
DROP TABLE mfa_recovery_codes;
ALTER TABLE users
    DROP COLUMN mfa_last_step,
    DROP COLUMN mfa_secret_sealed;
