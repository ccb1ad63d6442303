-- How each session was authenticated (RFC 8176 `amr`), so refreshed access
-- tokens keep saying whether the login completed a second factor. Expand
-- only: sessions opened before this column count as password-only, which
-- grants fewer rights (the operator role needs `otp`), never more.
ALTER TABLE sessions ADD COLUMN amr text[] NOT NULL DEFAULT ARRAY['pwd']::text[];

-- validate:
-- SELECT EXISTS (SELECT 1 FROM pg_attribute
--   WHERE attrelid = 'sessions'::regclass AND attname = 'amr' AND NOT attisdropped);
