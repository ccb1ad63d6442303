//! Teams: a lead invites a trainer, who joins by accepting; a member leaves,
//! or a lead above removes them. The tree is the only source of supervision.

use chrono::{Duration, Utc};
use fitflow_api::idempotency::{self, Claim};
use fitflow_auth::Principal;
use fitflow_outbox::{Action, AuditEventBuilder};
use uuid::Uuid;

use super::trainers::TrainerView;
use super::{Directory, Idempotency, TrainerRef, user};
use crate::domain;
use crate::letters::TeamInvitationLetter;
use crate::repo::{self, TeamInvitationRow};
use crate::{SERVICE, TenancyError};

/// How long an invitation waits for an answer.
const INVITATION_LIFETIME_DAYS: i64 = 14;
/// Most members `ListTeamMembers` returns.
pub(crate) const MAX_MEMBERS: usize = 256;

impl Directory {
    /// A lead (the caller, or a trainer the caller acts for) invites a
    /// trainer into their team.
    pub(crate) async fn invite_team_member(
        &self,
        principal: &Principal,
        leader_id: Uuid,
        invitee: TrainerRef,
        request: Idempotency,
    ) -> Result<TeamInvitationRow, TenancyError> {
        let trainer_id = match invitee {
            TrainerRef::Id(id) => id,
            TrainerRef::Email(email) => self.accounts.trainer_id_by_email(&email).await?,
        };
        let invitation_id = Uuid::now_v7();
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        if let Some((key, hash)) = &request.0
            && let Claim::Replay(existing) =
                idempotency::claim(&mut tx, key, hash, invitation_id).await?
        {
            let row = repo::team_invitation(&mut tx, existing, false)
                .await?
                .ok_or(TenancyError::TeamInvitationNotFound)?;
            tx.commit().await.map_err(fitflow_db::DbError::from)?;
            return Ok(row);
        }
        if !repo::caller_acts_for(&mut tx, leader_id).await? {
            return Err(TenancyError::TrainerNotFound);
        }
        let leader = repo::trainer(&mut tx, leader_id, false)
            .await?
            .ok_or(TenancyError::TrainerNotFound)?;
        repo::lock_teams(&mut tx).await?;
        let leader_chain = repo::team_chain_upwards(&mut tx, leader_id).await?;
        if leader_chain.contains(&trainer_id) {
            return Err(TenancyError::TeamInvalid("the invitee leads the lead"));
        }
        if repo::team_leader_of(&mut tx, trainer_id).await?.is_some() {
            return Err(TenancyError::TeamInvalid(
                "the invitee is in a team already",
            ));
        }
        repo::expire_team_invitations(&mut tx, leader_id, trainer_id).await?;
        let expires_at = Utc::now() + Duration::days(INVITATION_LIFETIME_DAYS);
        let inserted = repo::insert_team_invitation(
            &mut tx,
            invitation_id,
            leader_id,
            trainer_id,
            principal.user_id,
            expires_at,
        )
        .await
        .map_err(|error| {
            // The invitee's profile is invisible to the lead: the foreign
            // key is how a missing one shows.
            if repo::is_foreign_key_violation(&error) {
                TenancyError::TrainerNotFound
            } else {
                error.into()
            }
        })?;
        if !inserted {
            return Err(TenancyError::TeamInvitationExists);
        }
        let event =
            AuditEventBuilder::new(SERVICE, Action::Create, "team_invitations", invitation_id)
                .actor_user(principal.user_id)
                .tenant(leader_id)
                .change("leader_id", "", &leader_id.to_string())
                .change("trainer_id", "", &trainer_id.to_string())
                .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        let row = repo::team_invitation(&mut tx, invitation_id, false)
            .await?
            .ok_or(TenancyError::TeamInvitationNotFound)?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        // Only a new invitation is mailed: a replay of its request is not.
        self.letters.send_team_invitation(
            trainer_id,
            TeamInvitationLetter {
                invitation_id,
                lead_name: leader.business_name,
                expires_at: row.expires_at,
            },
        );
        Ok(row)
    }

    /// Pending invitations a trainer the caller acts for received or sent.
    pub(crate) async fn team_invitations(
        &self,
        principal: &Principal,
        trainer_id: Uuid,
    ) -> Result<Vec<TeamInvitationRow>, TenancyError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        if !repo::caller_acts_for(&mut tx, trainer_id).await? {
            return Err(TenancyError::TrainerNotFound);
        }
        let rows = repo::pending_team_invitations(&mut tx, trainer_id).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(rows)
    }

    /// The invitee accepts (joins, keeping the team a tree) or declines.
    pub(crate) async fn answer_team_invitation(
        &self,
        principal: &Principal,
        invitation_id: Uuid,
        accept: bool,
    ) -> Result<TeamInvitationRow, TenancyError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        repo::lock_teams(&mut tx).await?;
        let invitation = repo::team_invitation(&mut tx, invitation_id, true)
            .await?
            .filter(|row| row.state == "pending" && row.expires_at > Utc::now())
            .ok_or(TenancyError::TeamInvitationNotFound)?;
        // Only the invitee's side answers; the lead sees it but cannot.
        if !repo::caller_acts_for(&mut tx, invitation.trainer_id).await? {
            return Err(TenancyError::TeamInvitationNotFound);
        }
        if accept {
            let leader_chain = repo::team_chain_upwards(&mut tx, invitation.leader_id).await?;
            let height = repo::team_subtree_height(&mut tx, invitation.trainer_id).await?;
            if repo::team_leader_of(&mut tx, invitation.trainer_id)
                .await?
                .is_some()
            {
                return Err(TenancyError::TeamInvalid(
                    "the trainer is in a team already",
                ));
            }
            if !domain::chain_allows(Some(invitation.trainer_id), &leader_chain, height) {
                return Err(TenancyError::TeamInvalid(
                    "a trainer cannot lead their own lead, and a team has at most four levels",
                ));
            }
            repo::insert_team_link(&mut tx, invitation.trainer_id, invitation.leader_id).await?;
            let mut chain = vec![invitation.trainer_id];
            chain.extend(leader_chain);
            super::claims::invalidate(&mut tx, &domain::team_change_stale(&chain)).await?;
        }
        let state = if accept { "accepted" } else { "declined" };
        repo::answer_team_invitation(&mut tx, invitation_id, state).await?;
        let event =
            AuditEventBuilder::new(SERVICE, Action::Update, "team_invitations", invitation_id)
                .actor_user(principal.user_id)
                .tenant(invitation.leader_id)
                .change("state", "pending", state)
                .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        if accept {
            let link = AuditEventBuilder::new(
                SERVICE,
                Action::Create,
                "team_links",
                invitation.trainer_id,
            )
            .actor_user(principal.user_id)
            .tenant(invitation.trainer_id)
            .change("leader_id", "", &invitation.leader_id.to_string())
            .build();
            fitflow_outbox::record(&mut tx, &link).await?;
        }
        let row = repo::team_invitation(&mut tx, invitation_id, false)
            .await?
            .ok_or(TenancyError::TeamInvitationNotFound)?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(row)
    }

    /// A member leaves their team, or a lead above them removes them.
    pub(crate) async fn leave_team(
        &self,
        principal: &Principal,
        trainer_id: Uuid,
    ) -> Result<TrainerView, TenancyError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        repo::lock_teams(&mut tx).await?;
        if !repo::caller_acts_for(&mut tx, trainer_id).await? {
            return Err(TenancyError::TrainerNotFound);
        }
        let leader = repo::team_leader_of(&mut tx, trainer_id)
            .await?
            .ok_or(TenancyError::TrainerNotFound)?;
        // Read while the caller still acts for the trainer: a lead above
        // does so only through the link about to go.
        let mut row = repo::trainer(&mut tx, trainer_id, false)
            .await?
            .ok_or(TenancyError::TrainerNotFound)?;
        // The leaders the member leaves, read before the link goes.
        let chain = repo::team_chain_upwards(&mut tx, trainer_id).await?;
        repo::delete_team_link(&mut tx, trainer_id).await?;
        super::claims::invalidate(&mut tx, &domain::team_change_stale(&chain)).await?;
        row.leader_id = None;
        let event = AuditEventBuilder::new(SERVICE, Action::Delete, "team_links", trainer_id)
            .actor_user(principal.user_id)
            .tenant(trainer_id)
            .change("leader_id", &leader.to_string(), "")
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        super::trainers::view(row)
    }

    /// The trainers below a lead the caller acts for, nearest first.
    pub(crate) async fn team_members(
        &self,
        principal: &Principal,
        leader_id: Uuid,
    ) -> Result<(Vec<TrainerView>, bool), TenancyError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        if !repo::caller_acts_for(&mut tx, leader_id).await? {
            return Err(TenancyError::TrainerNotFound);
        }
        let limit = i64::try_from(MAX_MEMBERS).unwrap_or(i64::MAX);
        let mut rows = repo::team_members(&mut tx, leader_id, limit + 1).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        let truncated = rows.len() > MAX_MEMBERS;
        rows.truncate(MAX_MEMBERS);
        let members = rows
            .into_iter()
            .map(super::trainers::view)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((members, truncated))
    }
}
