DROP TABLE email_verifications;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE users;
DROP TABLE audit_outbox;
DROP TABLE data_keys;
