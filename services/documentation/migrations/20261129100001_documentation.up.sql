-- Session notes (signed, then amended, never edited) and versioned training
-- plans. Every health field is sealed in the application under the client's
-- own key (OpenBao); PostgreSQL holds ciphertext only (bytea). A row is
-- visible to whoever acts for its trainer, and to a caller the clients
-- service admitted to the client (fitflow.granted_client_id, set in the
-- request's transaction after CheckClientAccess said yes).

CREATE TABLE session_notes (
    id                  uuid        PRIMARY KEY,
    client_id           uuid        NOT NULL,
    trainer_id          uuid        NOT NULL,
    appointment_id      uuid        NOT NULL,
    session_date        date        NOT NULL,
    session_time        timestamptz NOT NULL,
    status              text        NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'signed')),
    -- Sealed: the SOAP text and exercises; the measurements; the private notes.
    body                bytea       NOT NULL,
    measurements        bytea,
    private_notes       bytea,
    signed_at           timestamptz,
    signed_by           uuid,
    -- Sealed summary text; its provenance is not health information.
    ai_summary          bytea,
    ai_model            text,
    ai_generated_at     timestamptz,
    ai_submitted_by     uuid,
    ai_submitted_at     timestamptz,
    ai_accepted_by      uuid,
    ai_accepted_at      timestamptz,
    amendment_count     integer     NOT NULL DEFAULT 0,
    version             bigint      NOT NULL DEFAULT 1,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT session_notes_one_per_session UNIQUE (appointment_id, client_id),
    CONSTRAINT session_notes_signature CHECK ((status = 'signed') = (signed_at IS NOT NULL AND signed_by IS NOT NULL)),
    CONSTRAINT session_notes_ai_provenance CHECK (
        (ai_summary IS NULL) = (ai_model IS NULL AND ai_generated_at IS NULL AND ai_submitted_by IS NULL AND ai_submitted_at IS NULL)),
    CONSTRAINT session_notes_ai_accepted CHECK (ai_accepted_by IS NULL OR ai_summary IS NOT NULL)
);
CREATE INDEX session_notes_client_idx ON session_notes (client_id, session_time DESC, id DESC);

-- A signed note's text is the record: no role may change it. Amendments
-- live beside it; a trigger refuses any update of a signed note's original
-- columns (status, body, measurements, private notes, signature, session),
-- whoever runs it.
CREATE FUNCTION session_notes_signed_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'signed' AND (
           NEW.status IS DISTINCT FROM OLD.status
        OR NEW.body IS DISTINCT FROM OLD.body
        OR NEW.measurements IS DISTINCT FROM OLD.measurements
        OR NEW.private_notes IS DISTINCT FROM OLD.private_notes
        OR NEW.signed_at IS DISTINCT FROM OLD.signed_at
        OR NEW.signed_by IS DISTINCT FROM OLD.signed_by
        OR NEW.client_id IS DISTINCT FROM OLD.client_id
        OR NEW.trainer_id IS DISTINCT FROM OLD.trainer_id
        OR NEW.appointment_id IS DISTINCT FROM OLD.appointment_id
        OR NEW.session_date IS DISTINCT FROM OLD.session_date
        OR NEW.session_time IS DISTINCT FROM OLD.session_time) THEN
        RAISE EXCEPTION 'a signed session note never changes; amend it'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'session_notes_signed_immutable';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER session_notes_signed_guard BEFORE UPDATE ON session_notes
    FOR EACH ROW EXECUTE FUNCTION session_notes_signed_guard();

CREATE TABLE session_note_amendments (
    id            uuid        PRIMARY KEY,
    note_id       uuid        NOT NULL REFERENCES session_notes (id),
    client_id     uuid        NOT NULL,
    trainer_id    uuid        NOT NULL,
    sequence      integer     NOT NULL CHECK (sequence >= 1),
    author_id     uuid        NOT NULL,
    -- Sealed, like the note's own columns.
    reason        bytea       NOT NULL,
    body          bytea       NOT NULL,
    measurements  bytea,
    private_notes bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT session_note_amendments_sequence UNIQUE (note_id, sequence)
);

CREATE TABLE training_plans (
    id              uuid        PRIMARY KEY,
    client_id       uuid        NOT NULL,
    trainer_id      uuid        NOT NULL,
    current_version integer     NOT NULL DEFAULT 1 CHECK (current_version >= 1),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX training_plans_client_idx ON training_plans (client_id, created_at DESC, id DESC);

-- Every version of a plan, insert-only for the runtime role.
CREATE TABLE training_plan_versions (
    -- The version's own id: its sealed body is bound to it.
    id                uuid        NOT NULL UNIQUE,
    plan_id           uuid        NOT NULL REFERENCES training_plans (id),
    version           integer     NOT NULL CHECK (version >= 1),
    client_id         uuid        NOT NULL,
    trainer_id        uuid        NOT NULL,
    start_date        date        NOT NULL,
    end_date          date,
    sessions_per_week integer     NOT NULL CHECK (sessions_per_week BETWEEN 1 AND 14),
    status            text        NOT NULL CHECK (status IN ('active', 'paused', 'completed', 'cancelled')),
    -- Sealed: name, goal, weeks and metrics.
    body              bytea       NOT NULL,
    author_id         uuid        NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (plan_id, version),
    CONSTRAINT training_plan_versions_dates CHECK (end_date IS NULL OR end_date >= start_date)
);

-- Whether the calling user acts for `trainer` (the trainer or a supervisor).
CREATE FUNCTION caller_acts_for(trainer uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT trainer::text = current_setting('fitflow.user_id', true)
        OR trainer::text = ANY (string_to_array(NULLIF(current_setting('fitflow.supervised', true), ''), ','))
$$;

-- Whether the clients service admitted the caller to `client` in this
-- transaction.
CREATE FUNCTION client_granted(client uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT client::text = NULLIF(current_setting('fitflow.granted_client_id', true), '')
$$;

REVOKE DELETE, TRUNCATE ON session_notes, session_note_amendments, training_plans, training_plan_versions
    FROM fitflow_documentation;
REVOKE UPDATE ON session_note_amendments, training_plan_versions FROM fitflow_documentation;

ALTER TABLE session_notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE session_notes FORCE ROW LEVEL SECURITY;
CREATE POLICY session_notes_system ON session_notes
    USING (current_user = 'fitflow_documentation_system');
CREATE POLICY session_notes_user ON session_notes
    USING (caller_acts_for(trainer_id) OR client_granted(client_id))
    WITH CHECK (caller_acts_for(trainer_id) OR client_granted(client_id));

ALTER TABLE session_note_amendments ENABLE ROW LEVEL SECURITY;
ALTER TABLE session_note_amendments FORCE ROW LEVEL SECURITY;
CREATE POLICY session_note_amendments_system ON session_note_amendments
    USING (current_user = 'fitflow_documentation_system');
CREATE POLICY session_note_amendments_user ON session_note_amendments
    USING (caller_acts_for(trainer_id) OR client_granted(client_id))
    WITH CHECK (caller_acts_for(trainer_id) OR client_granted(client_id));

ALTER TABLE training_plans ENABLE ROW LEVEL SECURITY;
ALTER TABLE training_plans FORCE ROW LEVEL SECURITY;
CREATE POLICY training_plans_system ON training_plans
    USING (current_user = 'fitflow_documentation_system');
CREATE POLICY training_plans_user ON training_plans
    USING (caller_acts_for(trainer_id) OR client_granted(client_id))
    WITH CHECK (caller_acts_for(trainer_id) OR client_granted(client_id));

ALTER TABLE training_plan_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE training_plan_versions FORCE ROW LEVEL SECURITY;
CREATE POLICY training_plan_versions_system ON training_plan_versions
    USING (current_user = 'fitflow_documentation_system');
CREATE POLICY training_plan_versions_user ON training_plan_versions
    USING (caller_acts_for(trainer_id) OR client_granted(client_id))
    WITH CHECK (caller_acts_for(trainer_id) OR client_granted(client_id));

-- validate:
-- SELECT (SELECT bool_and(relforcerowsecurity) FROM pg_class
--         WHERE oid IN ('session_notes'::regclass, 'session_note_amendments'::regclass,
--                       'training_plans'::regclass, 'training_plan_versions'::regclass))
--    AND EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'session_notes_signed_guard')
--    AND NOT has_table_privilege('fitflow_documentation', 'session_note_amendments', 'UPDATE')
--    AND NOT has_table_privilege('fitflow_documentation', 'session_notes', 'DELETE');
