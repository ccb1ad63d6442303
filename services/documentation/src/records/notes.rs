//! Session notes: drafts, signatures, amendments, AI summaries and reads.

use chrono::{DateTime, Utc};
use fitflow_api::etag::Etag;
use fitflow_api::idempotency::{self, Claim};
use fitflow_api::time::{to_civil_date, to_timestamp};
use fitflow_auth::Principal;
use fitflow_error::{ApiError, FieldViolation};
use fitflow_outbox::{Action, AuditEventBuilder, Purpose};
use fitflow_proto::documentation as pb;
use fitflow_proto::google::r#type::Date;
use prost::Message as _;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Asker, Idempotency, Records, commit, event};
use crate::domain::{self, MAX_NOTE_HISTORY_BYTES, MAX_PAGE_BYTES, NoteStatus, View};
use crate::peers::Level;
use crate::repo::{self, AmendmentRow, NewNote, NoteRow, SealedNote};
use crate::seal::Slot;
use crate::{DocumentationError, SERVICE};

const NOTES: &str = "session_notes";
const AMENDMENTS: &str = "session_note_amendments";

/// A new note's draft as asked.
#[derive(Debug, Clone)]
pub(crate) struct NoteDraft {
    pub client_id: Uuid,
    pub appointment_id: Uuid,
    pub content: pb::SessionNoteContent,
}

fn status_of(row: &NoteRow) -> Result<NoteStatus, DocumentationError> {
    NoteStatus::parse(&row.status).ok_or(DocumentationError::Corrupt("note status"))
}

fn date(value: chrono::NaiveDate) -> Date {
    let civil = to_civil_date(value);
    Date {
        year: civil.year,
        month: civil.month,
        day: civil.day,
    }
}

fn text_of(id: Option<Uuid>) -> String {
    id.map(|id| id.to_string()).unwrap_or_default()
}

/// A note's metadata in the wire form; content, history and summary are
/// filled by the caller.
fn note_message(row: &NoteRow) -> pb::SessionNote {
    pb::SessionNote {
        id: row.id.to_string(),
        client_id: row.client_id.to_string(),
        trainer_id: row.trainer_id.to_string(),
        appointment_id: row.appointment_id.to_string(),
        session_date: Some(date(row.session_date)),
        session_time: Some(to_timestamp(row.session_time)),
        status: match NoteStatus::parse(&row.status) {
            Some(NoteStatus::Signed) => pb::NoteStatus::Signed,
            _ => pb::NoteStatus::Draft,
        } as i32,
        sign_time: row.signed_at.map(to_timestamp),
        signed_by: text_of(row.signed_by),
        amendment_count: row.amendment_count,
        create_time: Some(to_timestamp(row.created_at)),
        update_time: Some(to_timestamp(row.updated_at)),
        etag: Etag::of_version(row.id, row.version).as_str().to_owned(),
        ..pb::SessionNote::default()
    }
}

/// Splits content into its sealed parts' plaintexts: the body (SOAP and
/// exercises), the measurements, the private notes.
fn split(
    mut content: pb::SessionNoteContent,
) -> (pb::SessionNoteContent, Option<pb::Measurements>, String) {
    let measurements = content.measurements.take();
    let private_notes = std::mem::take(&mut content.private_notes);
    (content, measurements, private_notes)
}

/// The three sealed columns of one row, as read.
struct SealedParts<'a> {
    table: &'static str,
    row: Uuid,
    body: &'a [u8],
    measurements: Option<&'a [u8]>,
    private_notes: Option<&'a [u8]>,
}

impl<'a> From<&'a NoteRow> for SealedParts<'a> {
    fn from(row: &'a NoteRow) -> Self {
        Self {
            table: NOTES,
            row: row.id,
            body: &row.body,
            measurements: row.measurements.as_deref(),
            private_notes: row.private_notes.as_deref(),
        }
    }
}

impl<'a> From<&'a AmendmentRow> for SealedParts<'a> {
    fn from(row: &'a AmendmentRow) -> Self {
        Self {
            table: AMENDMENTS,
            row: row.id,
            body: &row.body,
            measurements: row.measurements.as_deref(),
            private_notes: row.private_notes.as_deref(),
        }
    }
}

impl Records {
    fn slot(table: &'static str, column: &'static str, row: Uuid) -> Slot {
        Slot { table, column, row }
    }

    /// Seals `content` of `client_id` into the columns of row `row` of `table`.
    async fn seal_content(
        &self,
        client_id: Uuid,
        table: &'static str,
        row: Uuid,
        content: pb::SessionNoteContent,
    ) -> Result<SealedNote, DocumentationError> {
        let (body, measurements, private_notes) = split(content);
        let mut sealed = SealedNote {
            body: self
                .sealer
                .seal(client_id, Self::slot(table, "body", row), &body)
                .await?,
            ..SealedNote::default()
        };
        if let Some(measurements) = measurements {
            sealed.measurements = Some(
                self.sealer
                    .seal(
                        client_id,
                        Self::slot(table, "measurements", row),
                        &measurements,
                    )
                    .await?,
            );
        }
        if !private_notes.is_empty() {
            sealed.private_notes = Some(
                self.sealer
                    .seal_text(
                        client_id,
                        Self::slot(table, "private_notes", row),
                        &private_notes,
                    )
                    .await?,
            );
        }
        Ok(sealed)
    }

    /// Opens sealed parts into content; private notes only for `view` TRAINER.
    async fn open_content(
        &self,
        client_id: Uuid,
        parts: SealedParts<'_>,
        view: View,
    ) -> Result<pb::SessionNoteContent, DocumentationError> {
        let mut content: pb::SessionNoteContent = self
            .sealer
            .open(
                client_id,
                Self::slot(parts.table, "body", parts.row),
                parts.body,
            )
            .await?;
        if let Some(sealed) = parts.measurements {
            content.measurements = Some(
                self.sealer
                    .open(
                        client_id,
                        Self::slot(parts.table, "measurements", parts.row),
                        sealed,
                    )
                    .await?,
            );
        }
        if let (Some(sealed), View::Trainer) = (parts.private_notes, view) {
            content.private_notes = self
                .sealer
                .open_text(
                    client_id,
                    Self::slot(parts.table, "private_notes", parts.row),
                    sealed,
                )
                .await?;
        }
        Ok(content)
    }

    async fn open_ai_summary(
        &self,
        row: &NoteRow,
    ) -> Result<Option<pb::AiSummary>, DocumentationError> {
        let Some(sealed) = &row.ai_summary else {
            return Ok(None);
        };
        let text = self
            .sealer
            .open_text(
                row.client_id,
                Self::slot(NOTES, "ai_summary", row.id),
                sealed,
            )
            .await?;
        Ok(Some(pb::AiSummary {
            text,
            model: row.ai_model.clone().unwrap_or_default(),
            generate_time: row.ai_generated_at.map(to_timestamp),
            submitted_by: text_of(row.ai_submitted_by),
            submit_time: row.ai_submitted_at.map(to_timestamp),
            accepted_by: text_of(row.ai_accepted_by),
            accept_time: row.ai_accepted_at.map(to_timestamp),
        }))
    }

    async fn open_amendment(
        &self,
        row: &AmendmentRow,
        view: View,
    ) -> Result<pb::Amendment, DocumentationError> {
        let reason = self
            .sealer
            .open_text(
                row.client_id,
                Self::slot(AMENDMENTS, "reason", row.id),
                &row.reason,
            )
            .await?;
        Ok(pb::Amendment {
            id: row.id.to_string(),
            author_id: row.author_id.to_string(),
            create_time: Some(to_timestamp(row.created_at)),
            reason,
            content: Some(self.open_content(row.client_id, row.into(), view).await?),
        })
    }

    /// The whole note as `view` shows it: current text, summary and, with
    /// `history`, the original and every amendment.
    pub(super) async fn render(
        &self,
        conn: &mut PgConnection,
        row: &NoteRow,
        view: View,
        history: bool,
        latest: Option<&AmendmentRow>,
    ) -> Result<pb::SessionNote, DocumentationError> {
        let mut note = note_message(row);
        let original = self.open_content(row.client_id, row.into(), view).await?;
        if row.amendment_count == 0 {
            note.content = Some(original);
        } else if history {
            let amendments = repo::amendments(conn, row.id).await?;
            for amendment in &amendments {
                note.amendments
                    .push(self.open_amendment(amendment, view).await?);
            }
            note.content = note.amendments.last().and_then(|last| last.content.clone());
            note.original_content = Some(original);
        } else {
            let fetched;
            let latest = match latest {
                Some(latest) => latest,
                None => {
                    fetched = repo::latest_amendments(conn, &[row.id]).await?;
                    fetched
                        .first()
                        .ok_or(DocumentationError::Corrupt("amendment count"))?
                }
            };
            note.content = Some(
                self.open_content(row.client_id, latest.into(), view)
                    .await?,
            );
        }
        note.ai_summary = self.open_ai_summary(row).await?;
        domain::shape_for_view(&mut note, view);
        Ok(note)
    }

    /// Reads the changed note back (view TRAINER, with its history when
    /// `history`), commits, and returns it.
    async fn finish(
        &self,
        mut tx: fitflow_db::Tx,
        note_id: Uuid,
        client_id: Uuid,
        history: bool,
    ) -> Result<pb::SessionNote, DocumentationError> {
        let row = repo::note(&mut tx, note_id, client_id, false)
            .await?
            .ok_or(DocumentationError::NoteNotFound)?;
        let note = self
            .render(&mut tx, &row, View::Trainer, history, None)
            .await?;
        commit(tx).await?;
        Ok(note)
    }

    /// Starts the draft of a client's session.
    pub(crate) async fn create_note(
        &self,
        asker: Asker<'_>,
        draft: NoteDraft,
        request: Idempotency,
    ) -> Result<pb::SessionNote, DocumentationError> {
        let principal = asker.principal;
        let client_id = draft.client_id;
        match self.peers.access(asker.bearer, client_id).await? {
            Level::None => return Err(DocumentationError::ClientNotFound),
            Level::Read => return Err(DocumentationError::AccessLevelInsufficient),
            Level::Write => {}
        }
        let session = self
            .peers
            .session(draft.appointment_id, client_id)
            .await?
            .filter(|session| principal.acts_for(session.trainer_id))
            .ok_or(DocumentationError::AppointmentNotFound)?;
        if !session.attended {
            return Err(DocumentationError::NotAttended);
        }
        let zone = self
            .peers
            .trainer_zone(asker.bearer, session.trainer_id)
            .await?;
        let session_date = session.start_time.with_timezone(&zone).date_naive();
        let id = Uuid::now_v7();
        let fields = changed_fields(&draft.content);
        let sealed = self
            .seal_content(client_id, NOTES, id, draft.content)
            .await?;

        let mut tx = fitflow_db::tx(&self.pool, &super::user(principal)).await?;
        repo::grant_client(&mut tx, client_id).await?;
        if let Some((key, hash)) = &request.0
            && let Claim::Replay(existing) = idempotency::claim(&mut tx, key, hash, id).await?
        {
            let row = repo::note(&mut tx, existing, client_id, false)
                .await?
                .ok_or(DocumentationError::NoteNotFound)?;
            let note = self
                .render(&mut tx, &row, View::Trainer, false, None)
                .await?;
            commit(tx).await?;
            return Ok(note);
        }
        let new = NewNote {
            id,
            client_id,
            trainer_id: session.trainer_id,
            appointment_id: draft.appointment_id,
            session_date,
            session_time: session.start_time,
            sealed,
        };
        if !repo::insert_note(&mut tx, &new).await? {
            return Err(DocumentationError::NoteExists);
        }
        let mut audit = event(principal, Action::Create, NOTES, id, session.trainer_id)
            .change("client_id", "", &client_id.to_string())
            .change("appointment_id", "", &draft.appointment_id.to_string())
            .change("status", "", NoteStatus::Draft.as_str());
        for field in fields {
            audit = audit.changed_field(field);
        }
        fitflow_outbox::record(&mut tx, &audit.build()).await?;
        self.finish(tx, id, client_id, false).await
    }

    /// The note locked for a change the caller may make to it.
    async fn note_for_change(
        &self,
        tx: &mut PgConnection,
        reach: super::Reach,
        principal: &Principal,
        client_id: Uuid,
        note_id: Uuid,
    ) -> Result<NoteRow, DocumentationError> {
        let row = repo::note(tx, note_id, client_id, true)
            .await?
            .filter(|row| reach.reads(principal, row.trainer_id))
            .ok_or_else(|| reach.missing(DocumentationError::NoteNotFound))?;
        Ok(row)
    }

    /// Replaces a draft's content.
    pub(crate) async fn update_note(
        &self,
        asker: Asker<'_>,
        client_id: Uuid,
        note_id: Uuid,
        content: pb::SessionNoteContent,
        etag: &str,
    ) -> Result<pb::SessionNote, DocumentationError> {
        let principal = asker.principal;
        let (mut tx, reach) = self.begin(asker, client_id).await?;
        let row = self
            .note_for_change(&mut tx, reach, principal, client_id, note_id)
            .await?;
        reach.check_write(principal, row.trainer_id)?;
        if status_of(&row)? == NoteStatus::Signed {
            return Err(DocumentationError::NoteSigned);
        }
        Etag::of_version(row.id, row.version).check(etag)?;
        let fields = changed_fields(&content);
        let sealed = self
            .seal_content(client_id, NOTES, note_id, content)
            .await?;
        repo::update_draft(&mut tx, note_id, &sealed).await?;
        let mut audit = event(principal, Action::Update, NOTES, note_id, row.trainer_id);
        for field in fields {
            audit = audit.changed_field(field);
        }
        fitflow_outbox::record(&mut tx, &audit.build()).await?;
        self.finish(tx, note_id, client_id, false).await
    }

    /// Signs a draft; only its own trainer may.
    pub(crate) async fn sign_note(
        &self,
        asker: Asker<'_>,
        client_id: Uuid,
        note_id: Uuid,
        etag: &str,
    ) -> Result<pb::SessionNote, DocumentationError> {
        let principal = asker.principal;
        let (mut tx, reach) = self.begin(asker, client_id).await?;
        let row = self
            .note_for_change(&mut tx, reach, principal, client_id, note_id)
            .await?;
        if principal.user_id != row.trainer_id {
            return Err(DocumentationError::NotNoteAuthor);
        }
        if status_of(&row)? == NoteStatus::Signed {
            return Err(DocumentationError::NoteSigned);
        }
        Etag::of_version(row.id, row.version).check(etag)?;
        repo::sign(&mut tx, note_id, principal.user_id).await?;
        let audit = event(principal, Action::Update, NOTES, note_id, row.trainer_id)
            .change(
                "status",
                NoteStatus::Draft.as_str(),
                NoteStatus::Signed.as_str(),
            )
            .change("signed_by", "", &principal.user_id.to_string())
            .build();
        fitflow_outbox::record(&mut tx, &audit).await?;
        self.finish(tx, note_id, client_id, false).await
    }

    /// Amends a signed note; the original and earlier amendments stay.
    pub(crate) async fn amend_note(
        &self,
        asker: Asker<'_>,
        client_id: Uuid,
        note_id: Uuid,
        reason: &str,
        content: pb::SessionNoteContent,
        etag: &str,
    ) -> Result<pb::SessionNote, DocumentationError> {
        let principal = asker.principal;
        let (mut tx, reach) = self.begin(asker, client_id).await?;
        let row = self
            .note_for_change(&mut tx, reach, principal, client_id, note_id)
            .await?;
        reach.check_write(principal, row.trainer_id)?;
        if status_of(&row)? == NoteStatus::Draft {
            return Err(DocumentationError::NoteDraft);
        }
        Etag::of_version(row.id, row.version).check(etag)?;
        let id = Uuid::now_v7();
        let fields = changed_fields(&content);
        let sealed = self
            .seal_content(client_id, AMENDMENTS, id, content)
            .await?;
        let reason = self
            .sealer
            .seal_text(client_id, Self::slot(AMENDMENTS, "reason", id), reason)
            .await?;
        let amendment = AmendmentRow {
            id,
            note_id,
            client_id,
            trainer_id: row.trainer_id,
            sequence: row.amendment_count + 1,
            author_id: principal.user_id,
            reason,
            body: sealed.body,
            measurements: sealed.measurements,
            private_notes: sealed.private_notes,
            created_at: Utc::now(),
        };
        repo::insert_amendment(&mut tx, &amendment).await?;
        let mut audit = event(principal, Action::Create, AMENDMENTS, id, row.trainer_id)
            .change("note_id", "", &note_id.to_string())
            .change("sequence", "", &amendment.sequence.to_string())
            .changed_field("reason");
        for field in fields {
            audit = audit.changed_field(field);
        }
        fitflow_outbox::record(&mut tx, &audit.build()).await?;
        let row = repo::note(&mut tx, note_id, client_id, false)
            .await?
            .ok_or(DocumentationError::NoteNotFound)?;
        let note = self
            .render(&mut tx, &row, View::Trainer, true, None)
            .await?;
        // Every read of the note must fit one gRPC message: past its budget
        // the transaction is dropped (rolled back) and nothing is written.
        if domain::history_bytes(&note) > MAX_NOTE_HISTORY_BYTES {
            return Err(DocumentationError::NoteHistoryTooLarge);
        }
        commit(tx).await?;
        Ok(note)
    }

    /// Reads a note for `view`, with an access event for `purpose`.
    pub(crate) async fn note(
        &self,
        asker: Asker<'_>,
        client_id: Uuid,
        note_id: Uuid,
        view: View,
        history: bool,
        purpose: Purpose,
    ) -> Result<pb::SessionNote, DocumentationError> {
        let principal = asker.principal;
        let (mut tx, reach) = self.begin(asker, client_id).await?;
        let row = repo::note(&mut tx, note_id, client_id, false)
            .await?
            .filter(|row| reach.reads(principal, row.trainer_id))
            .ok_or_else(|| reach.missing(DocumentationError::NoteNotFound))?;
        if view == View::Client && status_of(&row)? == NoteStatus::Draft {
            return Err(DocumentationError::NoteDraft);
        }
        let access = event(principal, Action::View, NOTES, note_id, row.trainer_id)
            .change("client_id", "", &client_id.to_string())
            .change("view", "", view_name(view))
            .purpose(purpose)
            .build();
        fitflow_outbox::record(&mut tx, &access).await?;
        // Opened before the commit, returned after it: no event, no data.
        let note = self.render(&mut tx, &row, view, history, None).await?;
        commit(tx).await?;
        Ok(note)
    }

    /// One page of a client's notes, latest session first, at most
    /// `page_size` and [`MAX_PAGE_BYTES`] of them, with one access event for
    /// the page; and where the next page starts, if any.
    pub(crate) async fn notes(
        &self,
        asker: Asker<'_>,
        client_id: Uuid,
        view: View,
        purpose: Purpose,
        after: Option<(DateTime<Utc>, Uuid)>,
        page_size: u32,
    ) -> Result<(Vec<pb::SessionNote>, Option<(DateTime<Utc>, Uuid)>), DocumentationError> {
        let principal = asker.principal;
        let (mut tx, reach) = self.begin(asker, client_id).await?;
        // One more than the page tells whether a next page exists; the SQL
        // stops loading rows once their stored size passes the budget, so a
        // page holds at most the budget plus one note in memory.
        let budget = i64::try_from(MAX_PAGE_BYTES).unwrap_or(i64::MAX);
        let rows = repo::notes_page(
            &mut tx,
            client_id,
            view == View::Client,
            after,
            i64::from(page_size) + 1,
            budget,
        )
        .await?;
        let found = rows.first().map_or(0, |row| row.found);
        let rows: Vec<NoteRow> = rows
            .into_iter()
            .take(usize::try_from(page_size).unwrap_or(usize::MAX))
            .map(|row| row.note)
            .collect();
        if reach.level == Level::None
            && !rows
                .iter()
                .any(|row| reach.reads(principal, row.trainer_id))
        {
            return Err(DocumentationError::ClientNotFound);
        }
        let amended: Vec<Uuid> = rows
            .iter()
            .filter(|row| row.amendment_count > 0)
            .map(|row| row.id)
            .collect();
        let latest = repo::latest_amendments(&mut tx, &amended).await?;
        // Opened before the access event (which counts what is returned),
        // returned after the commit.
        let mut notes = Vec::with_capacity(rows.len());
        let mut bytes = 0;
        // The last note passed (returned or not the caller's to see): the
        // next page starts after it.
        let mut passed = 0;
        let mut last = None;
        for row in &rows {
            if reach.reads(principal, row.trainer_id) {
                let latest = latest.iter().find(|amendment| amendment.note_id == row.id);
                let note = self.render(&mut tx, row, view, false, latest).await?;
                // A page any gRPC client can read (4 MiB by default): past
                // the budget, the rest is the next page.
                let size = note.encoded_len();
                if !domain::joins_page(bytes, size) {
                    break;
                }
                bytes += size;
                notes.push(note);
            }
            passed += 1;
            last = Some((row.session_time, row.id));
        }
        let next = last.filter(|_| passed < found);
        let access =
            AuditEventBuilder::new(SERVICE, Action::View, "client_session_notes", client_id)
                .actor_user(principal.user_id)
                .change("notes", "", &notes.len().to_string())
                .change("view", "", view_name(view))
                .purpose(purpose)
                .build();
        fitflow_outbox::record(&mut tx, &access).await?;
        commit(tx).await?;
        Ok((notes, next))
    }

    /// Attaches an AI summary with its provenance.
    pub(crate) async fn submit_ai_summary(
        &self,
        asker: Asker<'_>,
        client_id: Uuid,
        note_id: Uuid,
        summary: AiSummaryDraft,
    ) -> Result<pb::SessionNote, DocumentationError> {
        let principal = asker.principal;
        let (mut tx, reach) = self.begin(asker, client_id).await?;
        let row = self
            .note_for_change(&mut tx, reach, principal, client_id, note_id)
            .await?;
        reach.check_write(principal, row.trainer_id)?;
        if summary.generated_at < row.session_time {
            return Err(ApiError::invalid_argument(vec![FieldViolation {
                field: "summary.generate_time".into(),
                description: "must not be before the session started".into(),
            }])
            .into());
        }
        let sealed = self
            .sealer
            .seal_text(
                client_id,
                Self::slot(NOTES, "ai_summary", note_id),
                &summary.text,
            )
            .await?;
        repo::set_ai_summary(
            &mut tx,
            note_id,
            &repo::AiSummaryRow {
                sealed: &sealed,
                model: &summary.model,
                generated_at: summary.generated_at,
                submitted_by: principal.user_id,
            },
        )
        .await?;
        let audit = event(principal, Action::Update, NOTES, note_id, row.trainer_id)
            .change(
                "ai_model",
                row.ai_model.as_deref().unwrap_or_default(),
                &summary.model,
            )
            .changed_field("ai_summary")
            .build();
        fitflow_outbox::record(&mut tx, &audit).await?;
        self.finish(tx, note_id, client_id, false).await
    }

    /// The note's trainer accepts the AI summary they read (`etag`).
    pub(crate) async fn accept_ai_summary(
        &self,
        asker: Asker<'_>,
        client_id: Uuid,
        note_id: Uuid,
        etag: &str,
    ) -> Result<pb::SessionNote, DocumentationError> {
        let principal = asker.principal;
        let (mut tx, reach) = self.begin(asker, client_id).await?;
        let row = self
            .note_for_change(&mut tx, reach, principal, client_id, note_id)
            .await?;
        if principal.user_id != row.trainer_id {
            return Err(DocumentationError::NotNoteAuthor);
        }
        if row.ai_summary.is_none() {
            return Err(DocumentationError::NoAiSummary);
        }
        // A summary submitted since the trainer's read changed the etag: they
        // accept only what they read.
        Etag::of_version(row.id, row.version).check(etag)?;
        repo::accept_ai_summary(&mut tx, note_id, principal.user_id).await?;
        let audit = event(principal, Action::Update, NOTES, note_id, row.trainer_id)
            .change("ai_summary_accepted_by", "", &principal.user_id.to_string())
            .build();
        fitflow_outbox::record(&mut tx, &audit).await?;
        self.finish(tx, note_id, client_id, false).await
    }
}

/// An AI summary as submitted.
#[derive(Debug, Clone)]
pub(crate) struct AiSummaryDraft {
    pub text: String,
    pub model: String,
    pub generated_at: DateTime<Utc>,
}

fn view_name(view: View) -> &'static str {
    match view {
        View::Trainer => "trainer",
        View::Client => "client",
    }
}

/// The content fields given (for the audit event, names only).
fn changed_fields(content: &pb::SessionNoteContent) -> Vec<&'static str> {
    let mut fields = Vec::new();
    for (name, given) in [
        ("subjective", !content.subjective.is_empty()),
        ("objective", !content.objective.is_empty()),
        ("assessment", !content.assessment.is_empty()),
        ("plan", !content.plan.is_empty()),
        ("exercises", !content.exercises.is_empty()),
        ("measurements", content.measurements.is_some()),
        ("private_notes", !content.private_notes.is_empty()),
    ] {
        if given {
            fields.push(name);
        }
    }
    fields
}
