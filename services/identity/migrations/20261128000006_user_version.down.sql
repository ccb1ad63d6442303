DROP TRIGGER users_next_version ON users;
DROP FUNCTION users_next_version();
ALTER TABLE users DROP COLUMN version;
