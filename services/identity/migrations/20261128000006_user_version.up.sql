-- A version per account, moved on by every write of the row, so that
-- `User.etag` (AIP-154: a hash of id and version) changes whenever the
-- account does; `UpdateProfile` checks it. A trigger moves it, so no UPDATE
-- of users can forget to. Expand only: existing rows start at 1, and a
-- running older release's updates move it too.
ALTER TABLE users ADD COLUMN version bigint NOT NULL DEFAULT 1;

CREATE FUNCTION users_next_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version + 1;
    RETURN NEW;
END;
$$;

CREATE TRIGGER users_next_version BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION users_next_version();

-- validate:
-- SELECT EXISTS (SELECT 1 FROM pg_trigger
--   WHERE tgname = 'users_next_version' AND tgrelid = 'users'::regclass)
--   AND EXISTS (SELECT 1 FROM pg_attribute
--   WHERE attrelid = 'users'::regclass AND attname = 'version' AND NOT attisdropped);
