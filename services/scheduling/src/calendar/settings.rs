//! A trainer's scheduling settings: what their calendar applies when a
//! request says nothing (the buffer free-slot searches keep).

use chrono::{DateTime, Utc};
use fitflow_api::etag::Etag;
use fitflow_auth::Principal;
use fitflow_outbox::{Action, AuditEventBuilder};
use uuid::Uuid;

use super::{Calendar, commit, trainer_of, user};
use crate::repo::{self, SettingsRow};
use crate::{SERVICE, SchedulingError};

const SETTINGS: &str = "scheduling_settings";

/// A trainer's settings in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    pub trainer_id: Uuid,
    pub default_buffer_minutes: i32,
    /// None for a trainer who never set any (the defaults have no version).
    pub etag: Option<Etag>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl Settings {
    /// The defaults of a trainer who set nothing.
    fn defaults(trainer_id: Uuid) -> Self {
        Self {
            trainer_id,
            default_buffer_minutes: 0,
            etag: None,
            updated_at: None,
        }
    }

    fn of_row(row: SettingsRow) -> Self {
        Self {
            trainer_id: row.trainer_id,
            default_buffer_minutes: row.default_buffer_minutes,
            etag: Some(Etag::of_version(row.trainer_id, row.version)),
            updated_at: Some(row.updated_at),
        }
    }
}

/// An update of a trainer's settings: the fields to write (None: keep).
#[derive(Debug, Clone, Default)]
pub(crate) struct SettingsChange {
    pub trainer_id: Option<Uuid>,
    pub default_buffer_minutes: Option<i32>,
    /// The etag last read, or empty for no check.
    pub etag: String,
}

impl Calendar {
    /// The settings in force for `trainer_id` in `tx` (the defaults when
    /// none are set).
    pub(super) async fn settings_in_tx(
        tx: &mut fitflow_db::Tx,
        trainer_id: Uuid,
        lock: bool,
    ) -> Result<Settings, SchedulingError> {
        Ok(repo::settings(tx, trainer_id, lock)
            .await?
            .map_or_else(|| Settings::defaults(trainer_id), Settings::of_row))
    }

    /// A trainer's scheduling settings.
    pub(crate) async fn settings(
        &self,
        principal: &Principal,
        trainer: Option<Uuid>,
    ) -> Result<Settings, SchedulingError> {
        let trainer_id = trainer_of(principal, trainer)?;
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let settings = Self::settings_in_tx(&mut tx, trainer_id, false).await?;
        commit(tx).await?;
        Ok(settings)
    }

    /// Updates a trainer's scheduling settings if `change.etag` is current;
    /// writing the values already held changes nothing and records nothing.
    pub(crate) async fn update_settings(
        &self,
        principal: &Principal,
        change: SettingsChange,
    ) -> Result<Settings, SchedulingError> {
        let trainer_id = trainer_of(principal, change.trainer_id)?;
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        // Twice at most: a first write that loses the race to another first
        // write reads the winner's row (locked) and is checked against it.
        let mut attempts = 0;
        let (before, buffer, row) = loop {
            attempts += 1;
            let before = Self::settings_in_tx(&mut tx, trainer_id, true).await?;
            match &before.etag {
                Some(etag) => etag.check(&change.etag)?,
                // Defaults have no etag: only "no check" matches them.
                None if change.etag.is_empty() => {}
                None => return Err(fitflow_api::ContractError::EtagMismatch.into()),
            }
            let buffer = change
                .default_buffer_minutes
                .unwrap_or(before.default_buffer_minutes);
            if buffer == before.default_buffer_minutes {
                commit(tx).await?;
                return Ok(before);
            }
            let row = if before.etag.is_some() {
                Some(repo::update_settings(&mut tx, trainer_id, buffer).await?)
            } else {
                repo::insert_settings(&mut tx, trainer_id, buffer).await?
            };
            match row {
                Some(row) => break (before, buffer, row),
                None if attempts < 2 => {}
                None => return Err(fitflow_api::ContractError::EtagMismatch.into()),
            }
        };
        let event = AuditEventBuilder::new(SERVICE, Action::Update, SETTINGS, trainer_id)
            .actor_user(principal.user_id)
            .tenant(trainer_id)
            .change(
                "default_buffer_minutes",
                &before.default_buffer_minutes.to_string(),
                &buffer.to_string(),
            )
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        commit(tx).await?;
        Ok(Settings::of_row(row))
    }
}
