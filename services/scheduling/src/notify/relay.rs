//! The notification relay: one leader per schema (a session advisory lock,
//! as the platform's relays), woken at each recorded intent's commit, sends
//! the pending notifications oldest first and settles each in the
//! transaction of its audit event. A transient failure (clients or the mail
//! server unreachable) stops the round and backs off, so notifications keep
//! their order; a failure of one notification alone defers it by its own
//! backoff and the round goes on. After [`super::MAX_ATTEMPTS`] the
//! notification is given up.

use std::time::Duration;

use chrono::Utc;
use fitflow_db::SystemPool;
use fitflow_mail::{Mail, Mailer};
use fitflow_outbox::{Action, AuditEventBuilder};
use tokio_util::sync::CancellationToken;

use super::letter::{Language, Letter};
use super::{Kind, MAX_ATTEMPTS, Outcome, TABLE};
use crate::clients::ClientAccess;
use crate::domain::{Location, Status};
use crate::repo::{self, NOTIFY_CHANNEL, PendingNotification};
use crate::{SERVICE, SchedulingError};

/// Notifications read per round.
const BATCH: i64 = 50;
/// How often to look when no wake-up arrives (a missed `NOTIFY`, a retry
/// that is due).
const POLL_INTERVAL: Duration = Duration::from_secs(5);

/// The relay's state.
struct Relay {
    system: SystemPool,
    clients: ClientAccess,
    mailer: Mailer,
}

/// Runs the relay (leading, or standing by for the leader) until
/// `shutdown` is cancelled.
pub async fn run_relay(
    system: SystemPool,
    clients: crate::ClientAccess,
    mailer: Mailer,
    shutdown: CancellationToken,
) {
    let relay = Relay {
        system,
        clients,
        mailer,
    };
    relay.run(shutdown).await;
}

impl Relay {
    async fn run(self, shutdown: CancellationToken) {
        let pool = self.system.pool().clone();
        let leadership = loop {
            match fitflow_outbox::try_lead_as(&pool, "notification_relay").await {
                Ok(Some(connection)) => break connection,
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "cannot take the notification relay lock"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        };
        let wakeups = fitflow_outbox::Wakeups::spawn(
            pool,
            NOTIFY_CHANNEL,
            "notification",
            POLL_INTERVAL,
            shutdown.child_token(),
        );
        let mut failures: u32 = 0;
        while !shutdown.is_cancelled() {
            let backoff = match self.deliver_pending(&shutdown).await {
                Ok(true) => {
                    failures = 0;
                    None
                }
                Ok(false) => {
                    let delay = super::retry_delay(failures);
                    failures = failures.saturating_add(1);
                    Some(delay)
                }
                Err(error) => {
                    tracing::warn!(%error, "notification relay cannot read its queue");
                    Some(POLL_INTERVAL)
                }
            };
            // While backing off, a new intent does not cut the wait short.
            let notified = async {
                if backoff.is_none() {
                    wakeups.notified().await;
                } else {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(backoff.unwrap_or(POLL_INTERVAL)) => {}
                () = notified => {}
            }
        }
        let _ = sqlx::Connection::close(leadership).await;
    }

    /// Sends what is pending, oldest first; false when one must be retried
    /// later (the ones behind it wait).
    async fn deliver_pending(&self, shutdown: &CancellationToken) -> Result<bool, SchedulingError> {
        loop {
            let mut tx = fitflow_db::system_tx(&self.system).await?;
            let pending = repo::pending_notifications(&mut tx, BATCH).await?;
            fitflow_db::end_read(tx);
            if pending.is_empty() {
                return Ok(true);
            }
            for notification in pending {
                if shutdown.is_cancelled() {
                    return Ok(true);
                }
                match self.deliver(&notification).await {
                    Outcome::Sent => self.settle(&notification, "sent", "").await?,
                    Outcome::Skipped(why) => self.settle(&notification, "skipped", why).await?,
                    Outcome::Failed(why) => {
                        tracing::error!(
                            notification_id = %notification.id,
                            outcome = why,
                            "a client notification was refused for good"
                        );
                        self.settle(&notification, "failed", why).await?;
                    }
                    Outcome::Retry(reason) | Outcome::Defer(reason)
                        if notification.attempts + 1 >= MAX_ATTEMPTS =>
                    {
                        tracing::error!(
                            notification_id = %notification.id,
                            %reason,
                            "a client notification was given up after its retries"
                        );
                        self.settle(&notification, "failed", "gave_up").await?;
                    }
                    Outcome::Defer(reason) => {
                        let delay = super::retry_delay(
                            u32::try_from(notification.attempts).unwrap_or_default(),
                        );
                        let mut tx = fitflow_db::system_tx(&self.system).await?;
                        repo::notification_attempt_failed(
                            &mut tx,
                            notification.id,
                            &reason,
                            Some(delay),
                        )
                        .await?;
                        tx.commit().await.map_err(fitflow_db::DbError::from)?;
                        tracing::warn!(
                            notification_id = %notification.id,
                            %reason,
                            retry_in = ?delay,
                            "a client notification was deferred; the others go on"
                        );
                    }
                    Outcome::Retry(reason) => {
                        let mut tx = fitflow_db::system_tx(&self.system).await?;
                        repo::notification_attempt_failed(&mut tx, notification.id, &reason, None)
                            .await?;
                        tx.commit().await.map_err(fitflow_db::DbError::from)?;
                        tracing::warn!(
                            notification_id = %notification.id,
                            %reason,
                            "a client notification was not sent; retrying"
                        );
                        return Ok(false);
                    }
                }
            }
        }
    }

    /// One attempt: the contact, the letter, the mail server.
    async fn deliver(&self, notification: &PendingNotification) -> Outcome {
        let Some(kind) = Kind::parse(&notification.kind) else {
            return Outcome::Failed("corrupt");
        };
        let scheduled = Status::parse(&notification.appointment_status) == Some(Status::Scheduled);
        if !super::still_worth_sending(
            kind,
            Utc::now(),
            notification.start_time,
            scheduled,
            notification.has_place,
        ) {
            return Outcome::Skipped("no_longer_due");
        }
        let contact = match self.clients.contact(notification.client_id).await {
            Ok(contact) => contact,
            Err(code) => return super::contact_refused(code),
        };
        if contact.email.trim().is_empty() {
            return Outcome::Skipped("no_email");
        }
        let letter = Letter {
            kind,
            language: Language::for_province(contact.province),
            first_name: contact.first_name,
            class_name: notification.class_type_name.clone(),
            start: notification.start_time,
            zone: notification
                .time_zone
                .as_deref()
                .and_then(|zone| zone.parse().ok())
                .unwrap_or(chrono_tz::UTC),
            location: Location::parse(&notification.location_type).unwrap_or(Location::Studio),
            series_sessions: notification.series_sessions,
        };
        let mail = Mail {
            to: contact.email,
            subject: letter.subject(),
            text: letter.text(),
        };
        match self.mailer.send(mail).await {
            Ok(()) => Outcome::Sent,
            Err(error) => super::mail_refused(&error),
        }
    }

    /// Settles `notification` with its audit event, in one transaction.
    async fn settle(
        &self,
        notification: &PendingNotification,
        status: &str,
        outcome: &str,
    ) -> Result<(), SchedulingError> {
        let mut tx = fitflow_db::system_tx(&self.system).await?;
        if repo::settle_notification(&mut tx, notification.id, status, outcome).await? {
            let mut event = AuditEventBuilder::new(SERVICE, Action::Update, TABLE, notification.id)
                .actor_service(SERVICE)
                .tenant(notification.trainer_id)
                .change("status", "pending", status)
                .change(
                    "appointment_id",
                    "",
                    &notification.appointment_id.to_string(),
                )
                .change("client_id", "", &notification.client_id.to_string())
                .change("kind", "", &notification.kind);
            if !outcome.is_empty() {
                event = event.change("outcome", "", outcome);
            }
            fitflow_outbox::record(&mut tx, &event.build()).await?;
        }
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(())
    }
}
