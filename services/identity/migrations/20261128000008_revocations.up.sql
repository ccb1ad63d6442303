-- What makes access tokens invalid before they expire, streamed to every
-- service by WatchRevocations (DESIGN.md §4, "Revocation is pushed"): a
-- revoked session, a suspended or deleted account, or a user whose
-- structure claims went stale. A verifier resumes after the last id it
-- applied, so ids must become visible in order: writers take the advisory
-- lock 'identity.revocations' for the rest of their transaction before
-- inserting (repo::lock_revocations), so a smaller id never commits after a
-- larger one is read. Rows are deleted once expired (no token they refuse
-- is valid any more).
--
-- No row-level security, like the outboxes: it holds no one's data (ids and
-- times), it is written by identity's own code in whatever caller's
-- transaction revokes, and read only by the service itself for the stream.
CREATE TABLE revocations (
    id            bigserial   PRIMARY KEY,
    kind          text        NOT NULL
                              CHECK (kind IN ('session_revoked', 'user_disabled', 'claims_stale')),
    subject_id    uuid        NOT NULL, -- the session id, or the user id
    issued_before timestamptz NOT NULL, -- tokens with an earlier iat are refused
    expires_at    timestamptz NOT NULL, -- forgotten after: no token it refuses is valid
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX revocations_expiry_idx ON revocations (expires_at);
-- Token issuance asks for a user's latest mark (domain::issue_delay).
CREATE INDEX revocations_subject_idx ON revocations (subject_id, issued_before DESC)
    WHERE kind <> 'session_revoked';

-- validate:
-- SELECT to_regclass('revocations') IS NOT NULL
--    AND to_regclass('revocations_subject_idx') IS NOT NULL;
