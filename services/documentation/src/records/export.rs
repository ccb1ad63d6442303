//! A client's whole documentation for the clients service's export,
//! streamed: the EXPORT event commits first, then notes and plan versions
//! are read a bounded batch at a time, each batch in its own transaction,
//! so neither this process nor a message ever holds the whole of it.

use chrono::{DateTime, Utc};
use fitflow_outbox::{Action, AuditEventBuilder, Purpose};
use fitflow_proto::documentation as pb;
use uuid::Uuid;

use super::{Records, commit};
use crate::domain::{MAX_PAGE_BYTES, View};
use crate::{DocumentationError, SERVICE, repo};

/// Most rows one batch reads (fewer when they are long).
const BATCH_ROWS: i64 = 100;

/// One exported record.
#[derive(Debug, Clone)]
pub(crate) enum Exported {
    /// A note with its history, view TRAINER.
    Note(Box<pb::SessionNote>),
    /// A plan version.
    Plan(Box<pb::TrainingPlan>),
}

/// Where an export stands: the last note and plan version read.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExportPosition {
    after_note: Option<(DateTime<Utc>, Uuid)>,
    notes_done: bool,
    after_plan: Option<(DateTime<Utc>, Uuid, i32)>,
}

impl Records {
    /// Records the EXPORT access event of `client_id` and reads the first
    /// batch in the same transaction: a client whose key is gone fails here,
    /// before anything is streamed; nothing is returned unless the event
    /// committed.
    pub(crate) async fn begin_export(
        &self,
        client_id: Uuid,
    ) -> Result<(Vec<Exported>, ExportPosition), DocumentationError> {
        let mut tx = fitflow_db::system_tx(&self.system).await?;
        let (notes, versions) = repo::documentation_counts(&mut tx, client_id).await?;
        let event =
            AuditEventBuilder::new(SERVICE, Action::Export, "client_documentation", client_id)
                // Only clients may call this RPC; the audit service admits
                // only the sending service as a service actor.
                .actor_service(SERVICE)
                .change("notes", "", &notes.to_string())
                .change("plan_versions", "", &versions.to_string())
                .purpose(Purpose::Operations)
                .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        let mut position = ExportPosition::default();
        let first = self
            .export_batch_in(&mut tx, client_id, &mut position)
            .await?;
        commit(tx).await?;
        Ok((first, position))
    }

    /// The next batch after `position` (moved past it); empty when the
    /// export is whole.
    pub(crate) async fn export_batch(
        &self,
        client_id: Uuid,
        position: &mut ExportPosition,
    ) -> Result<Vec<Exported>, DocumentationError> {
        let mut tx = fitflow_db::system_tx(&self.system).await?;
        let batch = self.export_batch_in(&mut tx, client_id, position).await?;
        commit(tx).await?;
        Ok(batch)
    }

    async fn export_batch_in(
        &self,
        tx: &mut fitflow_db::Tx,
        client_id: Uuid,
        position: &mut ExportPosition,
    ) -> Result<Vec<Exported>, DocumentationError> {
        let budget = i64::try_from(MAX_PAGE_BYTES).unwrap_or(i64::MAX);
        if !position.notes_done {
            let rows =
                repo::notes_batch(tx, client_id, position.after_note, BATCH_ROWS, budget).await?;
            if let Some(last) = rows.last() {
                position.after_note = Some((last.session_time, last.id));
                let mut batch = Vec::with_capacity(rows.len());
                for row in &rows {
                    let note = self.render(tx, row, View::Trainer, true, None).await?;
                    batch.push(Exported::Note(Box::new(note)));
                }
                return Ok(batch);
            }
            position.notes_done = true;
        }
        let rows =
            repo::plan_versions_batch(tx, client_id, position.after_plan, BATCH_ROWS, budget)
                .await?;
        if let Some(last) = rows.last() {
            position.after_plan = Some((
                last.plan_created_at,
                last.version.plan_id,
                last.version.version,
            ));
        }
        let mut batch = Vec::with_capacity(rows.len());
        for row in &rows {
            batch.push(Exported::Plan(Box::new(
                self.open_plan(&row.version).await?,
            )));
        }
        Ok(batch)
    }
}
