CREATE TABLE widgets (
    id   uuid PRIMARY KEY,
    name text NOT NULL
);

-- validate:
-- SELECT to_regclass('widgets') IS NOT NULL;
