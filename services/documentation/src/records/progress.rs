//! Progress charts from signed notes, and a client's whole documentation
//! for the clients service's export.

use chrono::NaiveDate;
use fitflow_outbox::{Action, AuditEventBuilder, Purpose};
use fitflow_proto::documentation as pb;
use uuid::Uuid;

use super::{Asker, Records, commit};
use crate::domain::{self, Metric, PlanSpan, PlanStatus, View};
use crate::peers::Level;
use crate::repo;
use crate::seal::Slot;
use crate::{DocumentationError, SERVICE};

/// Most notes one GetProgress reads.
const MAX_PROGRESS_NOTES: i64 = domain::MAX_PROGRESS_NOTES as i64;

/// A chart: its unit, its points (date, value, note) and the weeks'
/// adherence.
#[derive(Debug, Clone)]
pub(crate) struct Progress {
    pub unit: &'static str,
    pub points: Vec<(NaiveDate, f64, Uuid)>,
    pub weeks: Vec<domain::Week>,
}

impl Records {
    /// `metric` across the client's signed notes in [first, last], with
    /// plan adherence, and an access event.
    pub(crate) async fn progress(
        &self,
        asker: Asker<'_>,
        client_id: Uuid,
        metric: Metric,
        (first, last): (NaiveDate, NaiveDate),
        purpose: Purpose,
    ) -> Result<Progress, DocumentationError> {
        let principal = asker.principal;
        let (mut tx, reach) = self.begin(asker, client_id).await?;
        if reach.level == Level::None {
            // A trainer whose client moved on still charts nothing of theirs:
            // progress is the client's whole story, which needs the client.
            return Err(DocumentationError::ClientNotFound);
        }
        let sessions =
            repo::measured_sessions(&mut tx, client_id, first, last, MAX_PROGRESS_NOTES).await?;
        // Dates and pace only: adherence needs no plan's sealed body.
        let plans = repo::plan_spans(&mut tx, client_id, 200).await?;
        let access = AuditEventBuilder::new(SERVICE, Action::View, "client_progress", client_id)
            .actor_user(principal.user_id)
            .change("notes", "", &sessions.len().to_string())
            .purpose(purpose)
            .build();
        fitflow_outbox::record(&mut tx, &access).await?;
        let mut points = Vec::new();
        for session in &sessions {
            let Some(sealed) = &session.measurements else {
                continue;
            };
            let slot = match session.amendment_id {
                Some(amendment) => Slot {
                    table: "session_note_amendments",
                    column: "measurements",
                    row: amendment,
                },
                None => Slot {
                    table: "session_notes",
                    column: "measurements",
                    row: session.note_id,
                },
            };
            let measurements: pb::Measurements = self.sealer.open(client_id, slot, sealed).await?;
            if let Some(value) = metric.value_in(&measurements) {
                points.push((session.session_date, value, session.note_id));
            }
        }
        commit(tx).await?;
        let spans: Vec<PlanSpan> = plans
            .iter()
            .filter_map(|plan| {
                Some(PlanSpan {
                    start: plan.start_date,
                    end: plan.end_date,
                    status: PlanStatus::parse(&plan.status)?,
                    sessions_per_week: plan.sessions_per_week,
                })
            })
            .collect();
        let dates: Vec<NaiveDate> = sessions
            .iter()
            .map(|session| session.session_date)
            .collect();
        Ok(Progress {
            unit: metric.unit(),
            points,
            weeks: domain::adherence(first, last, &dates, &spans),
        })
    }

    /// Every note (with history) and plan version of a client, for the
    /// clients service's export (which checked the user's access).
    pub(crate) async fn export(
        &self,
        client_id: Uuid,
    ) -> Result<(Vec<pb::SessionNote>, Vec<pb::TrainingPlan>), DocumentationError> {
        let mut tx = fitflow_db::system_tx(&self.system).await?;
        // Measured before anything is loaded: one request must not hold
        // gigabytes (10,000 notes at their history budget) in this process.
        let stored = repo::documentation_bytes(&mut tx, client_id).await?;
        if usize::try_from(stored).unwrap_or(usize::MAX) > domain::MAX_WHOLE_EXPORT_BYTES {
            return Err(DocumentationError::ExportTooLarge);
        }
        let rows = repo::all_notes_of_client(&mut tx, client_id).await?;
        let versions = repo::all_plan_versions(&mut tx, client_id).await?;
        let event =
            AuditEventBuilder::new(SERVICE, Action::Export, "client_documentation", client_id)
                // Only clients may call this RPC; the audit service admits
                // only the sending service as a service actor.
                .actor_service(SERVICE)
                .change("notes", "", &rows.len().to_string())
                .change("plan_versions", "", &versions.len().to_string())
                .purpose(Purpose::Operations)
                .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        let mut notes = Vec::with_capacity(rows.len());
        for row in &rows {
            notes.push(self.render(&mut tx, row, View::Trainer, true, None).await?);
        }
        let mut plans = Vec::with_capacity(versions.len());
        for version in &versions {
            plans.push(self.open_plan(version).await?);
        }
        commit(tx).await?;
        Ok((notes, plans))
    }
}
