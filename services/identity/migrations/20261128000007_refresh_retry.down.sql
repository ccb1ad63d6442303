ALTER TABLE refresh_tokens
    DROP COLUMN replaced_by,
    DROP COLUMN retried_at,
    DROP COLUMN revoked_at;
