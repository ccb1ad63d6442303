//! Training plans: every revision is a new version; none is ever changed.

use chrono::{DateTime, Utc};
use fitflow_api::etag::Etag;
use fitflow_api::idempotency::{self, Claim};
use fitflow_api::time::{to_civil_date, to_timestamp};
use fitflow_outbox::{Action, AuditEventBuilder, Purpose};
use fitflow_proto::documentation as pb;
use fitflow_proto::google::r#type::Date;
use prost::Message as _;
use uuid::Uuid;

use super::{Asker, Idempotency, Records, commit, event};
use crate::domain::{self, MAX_PAGE_BYTES, PlanStatus};
use crate::peers::Level;
use crate::repo::{self, PlanVersionRow};
use crate::seal::Slot;
use crate::validate::PlanHeader;
use crate::{DocumentationError, SERVICE};

const VERSIONS: &str = "training_plan_versions";

/// A plan as asked: its checked header and the rest, to seal.
#[derive(Debug, Clone)]
pub(crate) struct PlanDraft {
    pub client_id: Uuid,
    pub trainer_id: Option<Uuid>,
    pub header: PlanHeader,
    pub plan: pb::TrainingPlan,
}

fn date(value: chrono::NaiveDate) -> Date {
    let civil = to_civil_date(value);
    Date {
        year: civil.year,
        month: civil.month,
        day: civil.day,
    }
}

fn status_wire(status: &str) -> Result<pb::PlanStatus, DocumentationError> {
    Ok(
        match PlanStatus::parse(status).ok_or(DocumentationError::Corrupt("plan status"))? {
            PlanStatus::Active => pb::PlanStatus::Active,
            PlanStatus::Paused => pb::PlanStatus::Paused,
            PlanStatus::Completed => pb::PlanStatus::Completed,
            PlanStatus::Cancelled => pb::PlanStatus::Cancelled,
        },
    )
}

/// The sealed part of a plan: everything but the header and ids.
fn sealed_part(plan: &pb::TrainingPlan) -> pb::TrainingPlan {
    pb::TrainingPlan {
        name: plan.name.clone(),
        goal: plan.goal.clone(),
        weeks: plan.weeks.clone(),
        metrics: plan.metrics.clone(),
        ..pb::TrainingPlan::default()
    }
}

impl Records {
    fn plan_slot(version_id: Uuid) -> Slot {
        Slot {
            table: VERSIONS,
            column: "body",
            row: version_id,
        }
    }

    /// A version opened into its wire form.
    pub(super) async fn open_plan(
        &self,
        row: &PlanVersionRow,
    ) -> Result<pb::TrainingPlan, DocumentationError> {
        let body: pb::TrainingPlan = self
            .sealer
            .open(row.client_id, Self::plan_slot(row.id), &row.body)
            .await?;
        Ok(pb::TrainingPlan {
            id: row.plan_id.to_string(),
            client_id: row.client_id.to_string(),
            trainer_id: row.trainer_id.to_string(),
            version: row.version,
            start_date: Some(date(row.start_date)),
            end_date: row.end_date.map(date),
            sessions_per_week: row.sessions_per_week,
            status: status_wire(&row.status)? as i32,
            author_id: row.author_id.to_string(),
            create_time: Some(to_timestamp(row.created_at)),
            etag: Etag::of_version(row.plan_id, i64::from(row.version))
                .as_str()
                .to_owned(),
            ..body
        })
    }

    async fn version_row(
        &self,
        plan_id: Uuid,
        client_id: Uuid,
        trainer_id: Uuid,
        version: i32,
        draft: &PlanDraft,
        author: Uuid,
    ) -> Result<PlanVersionRow, DocumentationError> {
        let id = Uuid::now_v7();
        let body = self
            .sealer
            .seal(client_id, Self::plan_slot(id), &sealed_part(&draft.plan))
            .await?;
        Ok(PlanVersionRow {
            id,
            plan_id,
            version,
            client_id,
            trainer_id,
            start_date: draft.header.start,
            end_date: draft.header.end,
            sessions_per_week: draft.header.sessions_per_week,
            status: draft.header.status.as_str().to_owned(),
            body,
            author_id: author,
            created_at: Utc::now(),
        })
    }

    /// Creates a plan for a trainer the caller acts for and a client they
    /// may write.
    pub(crate) async fn create_plan(
        &self,
        asker: Asker<'_>,
        draft: PlanDraft,
        request: Idempotency,
    ) -> Result<pb::TrainingPlan, DocumentationError> {
        let principal = asker.principal;
        let trainer_id = draft.trainer_id.unwrap_or(principal.user_id);
        if !principal.acts_for(trainer_id) {
            return Err(DocumentationError::TrainerNotFound);
        }
        let (mut tx, reach) = self.begin(asker, draft.client_id).await?;
        match reach.level {
            Level::None => return Err(DocumentationError::ClientNotFound),
            Level::Read => return Err(DocumentationError::AccessLevelInsufficient),
            Level::Write => {}
        }
        let plan_id = Uuid::now_v7();
        if let Some((key, hash)) = &request.0
            && let Claim::Replay(existing) = idempotency::claim(&mut tx, key, hash, plan_id).await?
        {
            let row = repo::plan_version(&mut tx, existing, draft.client_id, 0, false)
                .await?
                .ok_or(DocumentationError::PlanNotFound)?;
            let plan = self.open_plan(&row).await?;
            commit(tx).await?;
            return Ok(plan);
        }
        let row = self
            .version_row(
                plan_id,
                draft.client_id,
                trainer_id,
                1,
                &draft,
                principal.user_id,
            )
            .await?;
        repo::insert_plan(&mut tx, &row).await?;
        let audit = event(
            principal,
            Action::Create,
            "training_plans",
            plan_id,
            trainer_id,
        )
        .change("client_id", "", &draft.client_id.to_string())
        .change("version", "", "1")
        .change("status", "", &row.status)
        .changed_field("body")
        .build();
        fitflow_outbox::record(&mut tx, &audit).await?;
        let stored = repo::plan_version(&mut tx, plan_id, draft.client_id, 0, false)
            .await?
            .ok_or(DocumentationError::PlanNotFound)?;
        let plan = self.open_plan(&stored).await?;
        commit(tx).await?;
        Ok(plan)
    }

    /// Adds the next version of a plan.
    pub(crate) async fn revise_plan(
        &self,
        asker: Asker<'_>,
        plan_id: Uuid,
        draft: PlanDraft,
        etag: &str,
    ) -> Result<pb::TrainingPlan, DocumentationError> {
        let principal = asker.principal;
        let client_id = draft.client_id;
        let (mut tx, reach) = self.begin(asker, client_id).await?;
        let current = repo::plan_version(&mut tx, plan_id, client_id, 0, true)
            .await?
            .filter(|row| reach.reads(principal, row.trainer_id))
            .ok_or_else(|| reach.missing(DocumentationError::PlanNotFound))?;
        reach.check_write(principal, current.trainer_id)?;
        Etag::of_version(plan_id, i64::from(current.version)).check(etag)?;
        let version = current.version + 1;
        let row = self
            .version_row(
                plan_id,
                client_id,
                current.trainer_id,
                version,
                &draft,
                principal.user_id,
            )
            .await?;
        repo::insert_plan_version(&mut tx, &row).await?;
        let audit = event(
            principal,
            Action::Update,
            "training_plans",
            plan_id,
            current.trainer_id,
        )
        .change(
            "version",
            &current.version.to_string(),
            &version.to_string(),
        )
        .change("status", &current.status, &row.status)
        .changed_field("body")
        .build();
        fitflow_outbox::record(&mut tx, &audit).await?;
        let stored = repo::plan_version(&mut tx, plan_id, client_id, 0, false)
            .await?
            .ok_or(DocumentationError::PlanNotFound)?;
        let plan = self.open_plan(&stored).await?;
        commit(tx).await?;
        Ok(plan)
    }

    /// One version of a plan (0: the current one), with an access event.
    pub(crate) async fn plan(
        &self,
        asker: Asker<'_>,
        client_id: Uuid,
        plan_id: Uuid,
        version: i32,
        purpose: Purpose,
    ) -> Result<pb::TrainingPlan, DocumentationError> {
        let principal = asker.principal;
        let (mut tx, reach) = self.begin(asker, client_id).await?;
        let row = repo::plan_version(&mut tx, plan_id, client_id, version, false)
            .await?
            .filter(|row| reach.reads(principal, row.trainer_id))
            .ok_or_else(|| reach.missing(DocumentationError::PlanNotFound))?;
        let access = event(
            principal,
            Action::View,
            "training_plans",
            plan_id,
            row.trainer_id,
        )
        .change("client_id", "", &client_id.to_string())
        .change("version", "", &row.version.to_string())
        .purpose(purpose)
        .build();
        fitflow_outbox::record(&mut tx, &access).await?;
        let plan = self.open_plan(&row).await?;
        commit(tx).await?;
        Ok(plan)
    }

    /// One page of a client's plans (current versions), newest plan first,
    /// at most `page_size` and [`MAX_PAGE_BYTES`] of them, with one access
    /// event for the page; and where the next page starts, if any.
    pub(crate) async fn plans(
        &self,
        asker: Asker<'_>,
        client_id: Uuid,
        purpose: Purpose,
        after: Option<(DateTime<Utc>, Uuid)>,
        page_size: u32,
    ) -> Result<(Vec<pb::TrainingPlan>, Option<(DateTime<Utc>, Uuid)>), DocumentationError> {
        let principal = asker.principal;
        let (mut tx, reach) = self.begin(asker, client_id).await?;
        let budget = i64::try_from(MAX_PAGE_BYTES).unwrap_or(i64::MAX);
        let mut rows =
            repo::plans_page(&mut tx, client_id, after, i64::from(page_size), budget).await?;
        rows.retain(|row| reach.reads(principal, row.version.trainer_id));
        if rows.is_empty() && reach.level == Level::None {
            return Err(DocumentationError::ClientNotFound);
        }
        let remaining = rows.first().map_or(0, |row| row.remaining);
        // Opened before the access event (which counts what is returned),
        // returned after the commit.
        let mut plans = Vec::with_capacity(rows.len());
        let mut bytes = 0;
        let mut last = None;
        for row in &rows {
            let plan = self.open_plan(&row.version).await?;
            // A page any gRPC client can read (4 MiB by default).
            let size = plan.encoded_len();
            if !domain::joins_page(bytes, size) {
                break;
            }
            bytes += size;
            plans.push(plan);
            last = Some((row.plan_created_at, row.version.plan_id));
        }
        let next = last.filter(|_| i64::try_from(plans.len()).unwrap_or(i64::MAX) < remaining);
        let access =
            AuditEventBuilder::new(SERVICE, Action::View, "client_training_plans", client_id)
                .actor_user(principal.user_id)
                .change("plans", "", &plans.len().to_string())
                .purpose(purpose)
                .build();
        fitflow_outbox::record(&mut tx, &access).await?;
        commit(tx).await?;
        Ok((plans, next))
    }
}
