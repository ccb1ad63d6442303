//! The reminder sweep: every few minutes (and at start), the scheduled
//! sessions that entered their reminder window get their reminder intent,
//! as the service itself (system role). Every replica may sweep, at once
//! and as often as it likes: the intent's unique key lets exactly one
//! transaction record each reminder, and only that one writes its audit
//! event.

use chrono::{DateTime, Utc};
use fitflow_db::SystemPool;
use tokio_util::sync::CancellationToken;

use super::{Intent, Kind, NotifySettings, Recorder};
use crate::{SchedulingError, repo};

/// Reminders recorded per sweep transaction.
const SWEEP_BATCH: i64 = 200;

/// Records the reminders due at `now` with `lead` (sessions starting within
/// it, booked before their window opened, not reminded yet); returns how
/// many it recorded.
pub async fn sweep_reminders(
    system: &SystemPool,
    now: DateTime<Utc>,
    lead: chrono::Duration,
) -> Result<u64, SchedulingError> {
    let mut recorded = 0u64;
    loop {
        let mut tx = fitflow_db::system_tx(system).await?;
        let candidates = repo::reminder_candidates(&mut tx, now, lead, SWEEP_BATCH).await?;
        for candidate in &candidates {
            // The query applies the same rule; this keeps the two honest.
            let due = super::reminder_due(now, lead, candidate.start_time, candidate.booked_at);
            debug_assert!(due, "the reminder query and rule disagree");
            if !due {
                continue;
            }
            let intent = Intent {
                appointment_id: candidate.appointment_id,
                client_id: candidate.client_id,
                trainer_id: candidate.trainer_id,
                kind: Kind::Reminder,
                occurrence: 0,
            };
            if super::record(&mut tx, Recorder::Service, intent).await? {
                recorded += 1;
            }
        }
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        // A full batch may hide more; a concurrent sweep's reminders are
        // no longer candidates, so the loop ends.
        if i64::try_from(candidates.len()).unwrap_or(i64::MAX) < SWEEP_BATCH {
            return Ok(recorded);
        }
    }
}

/// Sweeps at start and then every `settings.sweep_interval` until `shutdown`.
pub async fn run_sweeper(
    system: SystemPool,
    settings: NotifySettings,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(settings.sweep_interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        match sweep_reminders(&system, Utc::now(), settings.reminder_lead).await {
            Ok(0) => {}
            Ok(recorded) => tracing::info!(recorded, "session reminders recorded"),
            Err(error) => tracing::error!(%error, "the reminder sweep failed"),
        }
    }
}
