-- The throwaway test service's one table, under row-level security.
CREATE TABLE widgets (
    id         uuid        PRIMARY KEY,
    owner_id   uuid        NOT NULL,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE widgets ENABLE ROW LEVEL SECURITY;
ALTER TABLE widgets FORCE ROW LEVEL SECURITY;
CREATE POLICY widgets_owner ON widgets
    USING (owner_id::text = current_setting('fitflow.user_id', true));

-- validate:
-- SELECT to_regclass('widgets') IS NOT NULL;
