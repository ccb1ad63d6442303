-- Teams: a lead invites a trainer, who accepts or declines; accepted, the
-- trainer's team_links row names the lead. Team changes are serialised by
-- an advisory lock in the service, which checks the tree (no cycle, four
-- levels) before it writes.

CREATE TABLE team_invitations (
    id          uuid        PRIMARY KEY,
    leader_id   uuid        NOT NULL REFERENCES trainers (id),
    trainer_id  uuid        NOT NULL REFERENCES trainers (id),
    state       text        NOT NULL DEFAULT 'pending'
                            CHECK (state IN ('pending', 'accepted', 'declined', 'expired')),
    invited_by  uuid        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    answered_at timestamptz,
    CONSTRAINT team_invitations_not_self CHECK (leader_id <> trainer_id)
);
-- One pending invitation per (lead, trainer).
CREATE UNIQUE INDEX team_invitations_one_pending_idx ON team_invitations (leader_id, trainer_id)
    WHERE state = 'pending';
CREATE INDEX team_invitations_trainer_idx ON team_invitations (trainer_id, created_at DESC);
CREATE INDEX team_invitations_leader_idx ON team_invitations (leader_id, created_at DESC);
REVOKE DELETE, TRUNCATE ON team_invitations FROM fitflow_tenancy, fitflow_tenancy_system;

ALTER TABLE team_invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE team_invitations FORCE ROW LEVEL SECURITY;
CREATE POLICY team_invitations_system ON team_invitations
    USING (current_user = 'fitflow_tenancy_system');
CREATE POLICY team_invitations_parties ON team_invitations FOR SELECT
    USING (caller_acts_for(leader_id) OR caller_acts_for(trainer_id));
CREATE POLICY team_invitations_invite ON team_invitations FOR INSERT
    WITH CHECK (caller_acts_for(leader_id));
-- The invitee answers; the lead's side only lets a lapsed one expire.
CREATE POLICY team_invitations_answer ON team_invitations FOR UPDATE
    USING (caller_acts_for(trainer_id) OR caller_acts_for(leader_id))
    WITH CHECK (caller_acts_for(trainer_id) OR caller_acts_for(leader_id));

-- A trainer joins a team themselves (accepting) and leaves it themselves,
-- or is removed by a lead above them (who acts for them through the link).
CREATE POLICY team_links_join ON team_links FOR INSERT
    WITH CHECK (caller_acts_for(trainer_id));
CREATE POLICY team_links_leave ON team_links FOR DELETE
    USING (caller_acts_for(trainer_id));

-- validate:
-- SELECT to_regclass('team_invitations') IS NOT NULL
--    AND (SELECT relforcerowsecurity FROM pg_class WHERE oid = 'team_invitations'::regclass)
--    AND EXISTS (SELECT 1 FROM pg_policies WHERE tablename = 'team_links' AND policyname = 'team_links_leave');
