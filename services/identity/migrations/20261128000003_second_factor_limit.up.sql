-- Second-factor failures are counted per account under their own kind, which
-- a correct password never resets (expand-only: one more allowed value).
ALTER TABLE login_attempts DROP CONSTRAINT login_attempts_kind_check;
ALTER TABLE login_attempts ADD CONSTRAINT login_attempts_kind_check
    CHECK (kind IN ('account', 'address', 'second_factor'));

-- validate:
-- SELECT pg_get_constraintdef(oid) LIKE '%second_factor%'
--   FROM pg_constraint WHERE conname = 'login_attempts_kind_check';
