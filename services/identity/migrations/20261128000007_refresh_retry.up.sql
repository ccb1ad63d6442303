-- A lost RefreshToken response can be retried once, within seconds, with
-- the same refresh token (domain::REFRESH_RETRY_WINDOW): the pair issued for
-- the lost response is revoked and a fresh pair of the same session issued,
-- instead of the session being revoked as token reuse. replaced_by is the
-- hash of the token issued in exchange for this one; retried_at marks its
-- one retry as spent; revoked_at marks a token revoked by such a retry
-- (presenting it later is reuse). Expand only: nullable columns.
ALTER TABLE refresh_tokens
    ADD COLUMN replaced_by bytea,
    ADD COLUMN retried_at  timestamptz,
    ADD COLUMN revoked_at  timestamptz;

-- validate:
-- SELECT (SELECT count(*) FROM pg_attribute
--   WHERE attrelid = 'refresh_tokens'::regclass AND NOT attisdropped
--     AND attname IN ('replaced_by', 'retried_at', 'revoked_at')) = 3;
