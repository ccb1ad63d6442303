//! Every SQL statement of the documentation service. Sealed columns come
//! and go as bytes; row-level security admits rows of trainers the caller
//! acts for and of the client set by [`grant_client`].

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// Admits the caller to `client_id`'s rows for the rest of the transaction
/// (the clients service said yes).
pub(crate) async fn grant_client(
    conn: &mut PgConnection,
    client_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT set_config('fitflow.granted_client_id', $1, true)")
        .bind(client_id.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// A `session_notes` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct NoteRow {
    pub id: Uuid,
    pub client_id: Uuid,
    pub trainer_id: Uuid,
    pub appointment_id: Uuid,
    pub session_date: NaiveDate,
    pub session_time: DateTime<Utc>,
    pub status: String,
    pub body: Vec<u8>,
    pub measurements: Option<Vec<u8>>,
    pub private_notes: Option<Vec<u8>>,
    pub signed_at: Option<DateTime<Utc>>,
    pub signed_by: Option<Uuid>,
    pub ai_summary: Option<Vec<u8>>,
    pub ai_model: Option<String>,
    pub ai_generated_at: Option<DateTime<Utc>>,
    pub ai_submitted_by: Option<Uuid>,
    pub ai_submitted_at: Option<DateTime<Utc>>,
    pub ai_accepted_by: Option<Uuid>,
    pub ai_accepted_at: Option<DateTime<Utc>>,
    pub amendment_count: i32,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const NOTE_COLUMNS: &str = "id, client_id, trainer_id, appointment_id, session_date, session_time, \
     status, body, measurements, private_notes, signed_at, signed_by, ai_summary, ai_model, \
     ai_generated_at, ai_submitted_by, ai_submitted_at, ai_accepted_by, ai_accepted_at, \
     amendment_count, version, created_at, updated_at";

/// A note's sealed parts.
#[derive(Debug, Clone, Default)]
pub(crate) struct SealedNote {
    pub body: Vec<u8>,
    pub measurements: Option<Vec<u8>>,
    pub private_notes: Option<Vec<u8>>,
}

/// A new draft.
#[derive(Debug, Clone)]
pub(crate) struct NewNote {
    pub id: Uuid,
    pub client_id: Uuid,
    pub trainer_id: Uuid,
    pub appointment_id: Uuid,
    pub session_date: NaiveDate,
    pub session_time: DateTime<Utc>,
    pub sealed: SealedNote,
}

/// Inserts a draft; `false` when the session already has a note for the client.
pub(crate) async fn insert_note(
    conn: &mut PgConnection,
    note: &NewNote,
) -> Result<bool, sqlx::Error> {
    let outcome = sqlx::query(
        "INSERT INTO session_notes (id, client_id, trainer_id, appointment_id, session_date, \
         session_time, body, measurements, private_notes) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(note.id)
    .bind(note.client_id)
    .bind(note.trainer_id)
    .bind(note.appointment_id)
    .bind(note.session_date)
    .bind(note.session_time)
    .bind(&note.sealed.body)
    .bind(&note.sealed.measurements)
    .bind(&note.sealed.private_notes)
    .execute(conn)
    .await;
    match outcome {
        Ok(_) => Ok(true),
        Err(error) if fitflow_db::is_unique_violation(&error, "session_notes_one_per_session") => {
            Ok(false)
        }
        Err(error) => Err(error),
    }
}

/// The note `id` of `client_id`, if the caller sees it (locked for a change).
pub(crate) async fn note(
    conn: &mut PgConnection,
    id: Uuid,
    client_id: Uuid,
    lock: bool,
) -> Result<Option<NoteRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {NOTE_COLUMNS} FROM session_notes WHERE id = $1 AND client_id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    ))
    .bind(id)
    .bind(client_id)
    .fetch_optional(conn)
    .await
}

/// Replaces a draft's sealed parts.
pub(crate) async fn update_draft(
    conn: &mut PgConnection,
    id: Uuid,
    sealed: &SealedNote,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE session_notes SET body = $2, measurements = $3, private_notes = $4, \
         version = version + 1, updated_at = now() WHERE id = $1 AND status = 'draft'",
    )
    .bind(id)
    .bind(&sealed.body)
    .bind(&sealed.measurements)
    .bind(&sealed.private_notes)
    .execute(conn)
    .await?;
    Ok(())
}

/// Signs a draft.
pub(crate) async fn sign(conn: &mut PgConnection, id: Uuid, by: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE session_notes SET status = 'signed', signed_at = now(), signed_by = $2, \
         version = version + 1, updated_at = now() WHERE id = $1 AND status = 'draft'",
    )
    .bind(id)
    .bind(by)
    .execute(conn)
    .await?;
    Ok(())
}

/// A `session_note_amendments` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct AmendmentRow {
    pub id: Uuid,
    pub note_id: Uuid,
    pub client_id: Uuid,
    pub trainer_id: Uuid,
    pub sequence: i32,
    pub author_id: Uuid,
    pub reason: Vec<u8>,
    pub body: Vec<u8>,
    pub measurements: Option<Vec<u8>>,
    pub private_notes: Option<Vec<u8>>,
    pub created_at: DateTime<Utc>,
}

const AMENDMENT_COLUMNS: &str = "id, note_id, client_id, trainer_id, sequence, author_id, reason, \
     body, measurements, private_notes, created_at";

/// Adds an amendment as the note's next and counts it on the note.
pub(crate) async fn insert_amendment(
    conn: &mut PgConnection,
    row: &AmendmentRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO session_note_amendments (id, note_id, client_id, trainer_id, sequence, \
         author_id, reason, body, measurements, private_notes) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(row.id)
    .bind(row.note_id)
    .bind(row.client_id)
    .bind(row.trainer_id)
    .bind(row.sequence)
    .bind(row.author_id)
    .bind(&row.reason)
    .bind(&row.body)
    .bind(&row.measurements)
    .bind(&row.private_notes)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE session_notes SET amendment_count = $2, version = version + 1, updated_at = now() \
         WHERE id = $1",
    )
    .bind(row.note_id)
    .bind(row.sequence)
    .execute(conn)
    .await?;
    Ok(())
}

/// Every amendment of a note, oldest first.
pub(crate) async fn amendments(
    conn: &mut PgConnection,
    note_id: Uuid,
) -> Result<Vec<AmendmentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {AMENDMENT_COLUMNS} FROM session_note_amendments WHERE note_id = $1 ORDER BY sequence"
    ))
    .bind(note_id)
    .fetch_all(conn)
    .await
}

/// The latest amendment of each of `note_ids` that has one.
pub(crate) async fn latest_amendments(
    conn: &mut PgConnection,
    note_ids: &[Uuid],
) -> Result<Vec<AmendmentRow>, sqlx::Error> {
    if note_ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(&format!(
        "SELECT DISTINCT ON (note_id) {AMENDMENT_COLUMNS} FROM session_note_amendments \
         WHERE note_id = ANY($1) ORDER BY note_id, sequence DESC"
    ))
    .bind(note_ids)
    .fetch_all(conn)
    .await
}

/// An AI summary with its provenance.
#[derive(Debug, Clone)]
pub(crate) struct AiSummaryRow<'a> {
    pub sealed: &'a [u8],
    pub model: &'a str,
    pub generated_at: DateTime<Utc>,
    pub submitted_by: Uuid,
}

/// Attaches (or replaces) a note's AI summary; clears any acceptance.
pub(crate) async fn set_ai_summary(
    conn: &mut PgConnection,
    id: Uuid,
    summary: &AiSummaryRow<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE session_notes SET ai_summary = $2, ai_model = $3, ai_generated_at = $4, \
         ai_submitted_by = $5, ai_submitted_at = now(), ai_accepted_by = NULL, \
         ai_accepted_at = NULL, version = version + 1, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(summary.sealed)
    .bind(summary.model)
    .bind(summary.generated_at)
    .bind(summary.submitted_by)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records who accepted a note's AI summary.
pub(crate) async fn accept_ai_summary(
    conn: &mut PgConnection,
    id: Uuid,
    by: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE session_notes SET ai_accepted_by = $2, ai_accepted_at = now(), \
         version = version + 1, updated_at = now() WHERE id = $1 AND ai_summary IS NOT NULL",
    )
    .bind(id)
    .bind(by)
    .execute(conn)
    .await?;
    Ok(())
}

/// A note in a page, with how many notes the page's query found.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct NotePageRow {
    #[sqlx(flatten)]
    pub note: NoteRow,
    /// How many notes follow `after` up to `limit`, whether loaded or cut:
    /// more than the page returns means a next page.
    pub found: i64,
}

/// One page of a client's notes the caller sees, latest session first,
/// after `after` (session time, id): at most `limit`, and none beyond the
/// first whose stored size (sealed parts and AI summary, plus its latest
/// amendment's sealed parts, which a page reads beside it) before it adds
/// up to `max_bytes` or more, so a page of long notes is not loaded whole.
/// Sizes are read from the stored lengths, without loading the values.
pub(crate) async fn notes_page(
    conn: &mut PgConnection,
    client_id: Uuid,
    signed_only: bool,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
    max_bytes: i64,
) -> Result<Vec<NotePageRow>, sqlx::Error> {
    let (after_time, after_id) = after.unzip();
    sqlx::query_as(&format!(
        "SELECT {NOTE_COLUMNS}, found FROM ( \
           SELECT n.*, count(*) OVER () AS found, \
                  sum(n.size) OVER (ORDER BY n.session_time DESC, n.id DESC) AS through FROM ( \
             SELECT s.*, octet_length(s.body) + coalesce(octet_length(s.measurements), 0) \
                    + coalesce(octet_length(s.private_notes), 0) \
                    + coalesce(octet_length(s.ai_summary), 0) \
                    + coalesce((SELECT octet_length(a.body) \
                                       + coalesce(octet_length(a.measurements), 0) \
                                       + coalesce(octet_length(a.private_notes), 0) \
                                FROM session_note_amendments a WHERE a.note_id = s.id \
                                ORDER BY a.sequence DESC LIMIT 1), 0) AS size \
             FROM session_notes s WHERE s.client_id = $1 \
               AND ($2::boolean IS FALSE OR s.status = 'signed') \
               AND ($3::timestamptz IS NULL OR (s.session_time, s.id) < ($3, $4)) \
             ORDER BY s.session_time DESC, s.id DESC LIMIT $5 \
           ) n \
         ) page WHERE through - size < $6 ORDER BY session_time DESC, id DESC"
    ))
    .bind(client_id)
    .bind(signed_only)
    .bind(after_time)
    .bind(after_id)
    .bind(limit)
    .bind(max_bytes)
    .fetch_all(conn)
    .await
}

/// Every note of a client, oldest session first (export).
pub(crate) async fn all_notes_of_client(
    conn: &mut PgConnection,
    client_id: Uuid,
) -> Result<Vec<NoteRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {NOTE_COLUMNS} FROM session_notes WHERE client_id = $1 \
         ORDER BY session_time, id LIMIT 10000"
    ))
    .bind(client_id)
    .fetch_all(conn)
    .await
}

/// A signed note's current measurements: where they are sealed and the bytes.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct MeasuredSession {
    pub note_id: Uuid,
    pub session_date: NaiveDate,
    /// The amendment holding the current text, if amended.
    pub amendment_id: Option<Uuid>,
    pub measurements: Option<Vec<u8>>,
}

/// The signed notes of a client with sessions in [first, last], oldest
/// first, at most `limit`, each with its current measurements.
pub(crate) async fn measured_sessions(
    conn: &mut PgConnection,
    client_id: Uuid,
    first: NaiveDate,
    last: NaiveDate,
    limit: i64,
) -> Result<Vec<MeasuredSession>, sqlx::Error> {
    sqlx::query_as(
        "SELECT n.id AS note_id, n.session_date, a.id AS amendment_id, \
                CASE WHEN a.id IS NULL THEN n.measurements ELSE a.measurements END AS measurements \
         FROM session_notes n \
         LEFT JOIN LATERAL (SELECT id, measurements FROM session_note_amendments \
                            WHERE note_id = n.id ORDER BY sequence DESC LIMIT 1) a ON n.amendment_count > 0 \
         WHERE n.client_id = $1 AND n.status = 'signed' AND n.session_date BETWEEN $2 AND $3 \
         ORDER BY n.session_date, n.session_time, n.id LIMIT $4",
    )
    .bind(client_id)
    .bind(first)
    .bind(last)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// A plan version, with its plan's trainer and current version.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct PlanVersionRow {
    pub id: Uuid,
    pub plan_id: Uuid,
    pub version: i32,
    pub client_id: Uuid,
    pub trainer_id: Uuid,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    pub sessions_per_week: i32,
    pub status: String,
    pub body: Vec<u8>,
    pub author_id: Uuid,
    pub created_at: DateTime<Utc>,
}

const PLAN_VERSION_COLUMNS: &str = "v.id, v.plan_id, v.version, v.client_id, v.trainer_id, v.start_date, \
     v.end_date, v.sessions_per_week, v.status, v.body, v.author_id, v.created_at";

/// Creates a plan whose first version is `first`.
pub(crate) async fn insert_plan(
    conn: &mut PgConnection,
    first: &PlanVersionRow,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO training_plans (id, client_id, trainer_id) VALUES ($1, $2, $3)")
        .bind(first.plan_id)
        .bind(first.client_id)
        .bind(first.trainer_id)
        .execute(&mut *conn)
        .await?;
    insert_plan_version(conn, first).await
}

/// Adds a version and makes it the plan's current one.
pub(crate) async fn insert_plan_version(
    conn: &mut PgConnection,
    row: &PlanVersionRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO training_plan_versions (id, plan_id, version, client_id, trainer_id, \
         start_date, end_date, sessions_per_week, status, body, author_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(row.id)
    .bind(row.plan_id)
    .bind(row.version)
    .bind(row.client_id)
    .bind(row.trainer_id)
    .bind(row.start_date)
    .bind(row.end_date)
    .bind(row.sessions_per_week)
    .bind(&row.status)
    .bind(&row.body)
    .bind(row.author_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE training_plans SET current_version = $2 WHERE id = $1")
        .bind(row.plan_id)
        .bind(row.version)
        .execute(conn)
        .await?;
    Ok(())
}

/// Version `version` (0: the current one) of plan `id` of `client_id`,
/// locking the plan for a revision when `lock`.
pub(crate) async fn plan_version(
    conn: &mut PgConnection,
    id: Uuid,
    client_id: Uuid,
    version: i32,
    lock: bool,
) -> Result<Option<PlanVersionRow>, sqlx::Error> {
    if lock {
        // The lock is taken alone, then the version read in a new statement:
        // a join locked `FOR UPDATE OF p` re-checks, after waiting for a
        // concurrent revision, the new `current_version` against the old
        // snapshot's versions and finds no row (the plan would seem gone).
        let found =
            sqlx::query("SELECT 1 FROM training_plans WHERE id = $1 AND client_id = $2 FOR UPDATE")
                .bind(id)
                .bind(client_id)
                .fetch_optional(&mut *conn)
                .await?;
        if found.is_none() {
            return Ok(None);
        }
    }
    sqlx::query_as(&format!(
        "SELECT {PLAN_VERSION_COLUMNS} FROM training_plans p \
         JOIN training_plan_versions v ON v.plan_id = p.id \
          AND v.version = CASE WHEN $3 = 0 THEN p.current_version ELSE $3 END \
         WHERE p.id = $1 AND p.client_id = $2"
    ))
    .bind(id)
    .bind(client_id)
    .bind(version)
    .fetch_optional(conn)
    .await
}

/// A plan's current version in a page, with what the page needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct PlanPageRow {
    #[sqlx(flatten)]
    pub version: PlanVersionRow,
    /// When the plan (not this version) was created: the page's order.
    pub plan_created_at: DateTime<Utc>,
    /// How many plans the caller sees from this page on (this page's too).
    pub remaining: i64,
}

/// One page of a client's plans the caller sees (current versions), newest
/// plan first, after the plan `after` (its creation and id): at most
/// `limit`, and no plan beyond the first whose sealed bodies before it add
/// up to `max_bytes` or more, so a page of long plans is not loaded whole.
pub(crate) async fn plans_page(
    conn: &mut PgConnection,
    client_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
    max_bytes: i64,
) -> Result<Vec<PlanPageRow>, sqlx::Error> {
    let (after_time, after_id) = after.unzip();
    sqlx::query_as(&format!(
        "SELECT * FROM ( \
           SELECT {PLAN_VERSION_COLUMNS}, p.created_at AS plan_created_at, \
                  count(*) OVER () AS remaining, \
                  sum(octet_length(v.body)) OVER (ORDER BY p.created_at DESC, p.id DESC) AS through \
           FROM training_plans p \
           JOIN training_plan_versions v ON v.plan_id = p.id AND v.version = p.current_version \
           WHERE p.client_id = $1 \
             AND ($2::timestamptz IS NULL OR (p.created_at, p.id) < ($2, $3)) \
           ORDER BY p.created_at DESC, p.id DESC LIMIT $4 \
         ) page WHERE through - octet_length(body) < $5 \
         ORDER BY plan_created_at DESC, plan_id DESC"
    ))
    .bind(client_id)
    .bind(after_time)
    .bind(after_id)
    .bind(limit)
    .bind(max_bytes)
    .fetch_all(conn)
    .await
}

/// What adherence needs of a plan: its current version's dates, status
/// and pace (no sealed body).
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct PlanSpanRow {
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    pub status: String,
    pub sessions_per_week: i32,
}

/// The current versions' spans of a client's plans the caller sees, newest
/// plan first, at most `limit`.
pub(crate) async fn plan_spans(
    conn: &mut PgConnection,
    client_id: Uuid,
    limit: i64,
) -> Result<Vec<PlanSpanRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT v.start_date, v.end_date, v.status, v.sessions_per_week FROM training_plans p \
         JOIN training_plan_versions v ON v.plan_id = p.id AND v.version = p.current_version \
         WHERE p.client_id = $1 ORDER BY p.created_at DESC, p.id DESC LIMIT $2",
    )
    .bind(client_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Every version of every plan of a client (export).
pub(crate) async fn all_plan_versions(
    conn: &mut PgConnection,
    client_id: Uuid,
) -> Result<Vec<PlanVersionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PLAN_VERSION_COLUMNS} FROM training_plans p \
         JOIN training_plan_versions v ON v.plan_id = p.id \
         WHERE p.client_id = $1 ORDER BY p.created_at, p.id, v.version LIMIT 100000"
    ))
    .bind(client_id)
    .fetch_all(conn)
    .await
}

/// The stored bytes of a client's documentation: sealed note parts, AI
/// summaries, amendments and plan versions, from their stored lengths
/// (nothing is loaded).
pub(crate) async fn documentation_bytes(
    conn: &mut PgConnection,
    client_id: Uuid,
) -> Result<i64, sqlx::Error> {
    let (bytes,): (i64,) = sqlx::query_as(
        "SELECT ( \
           (SELECT coalesce(sum(octet_length(body) + coalesce(octet_length(measurements), 0) \
                               + coalesce(octet_length(private_notes), 0) \
                               + coalesce(octet_length(ai_summary), 0)), 0) \
            FROM session_notes WHERE client_id = $1) \
         + (SELECT coalesce(sum(octet_length(body) + octet_length(reason) \
                               + coalesce(octet_length(measurements), 0) \
                               + coalesce(octet_length(private_notes), 0)), 0) \
            FROM session_note_amendments WHERE client_id = $1) \
         + (SELECT coalesce(sum(octet_length(body)), 0) \
            FROM training_plan_versions WHERE client_id = $1) \
         )::bigint",
    )
    .bind(client_id)
    .fetch_one(conn)
    .await?;
    Ok(bytes)
}

/// How many notes and plan versions a client has (the export's event).
pub(crate) async fn documentation_counts(
    conn: &mut PgConnection,
    client_id: Uuid,
) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM session_notes WHERE client_id = $1), \
                (SELECT count(*) FROM training_plan_versions WHERE client_id = $1)",
    )
    .bind(client_id)
    .fetch_one(conn)
    .await
}

/// The next notes of a client after `after` (session time, id), oldest
/// session first: at most `limit`, and none beyond the first whose sealed
/// parts and amendments before it add up to `max_bytes` or more, so a run
/// of long notes is not loaded at once (export).
pub(crate) async fn notes_batch(
    conn: &mut PgConnection,
    client_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
    max_bytes: i64,
) -> Result<Vec<NoteRow>, sqlx::Error> {
    let (after_time, after_id) = after.unzip();
    sqlx::query_as(&format!(
        "SELECT {NOTE_COLUMNS} FROM ( \
           SELECT n.*, sum(n.size) OVER (ORDER BY n.session_time, n.id) AS through FROM ( \
             SELECT s.*, octet_length(s.body) + coalesce(octet_length(s.measurements), 0) \
                    + coalesce(octet_length(s.private_notes), 0) \
                    + coalesce(octet_length(s.ai_summary), 0) \
                    + (SELECT coalesce(sum(octet_length(a.body) + octet_length(a.reason) \
                                           + coalesce(octet_length(a.measurements), 0) \
                                           + coalesce(octet_length(a.private_notes), 0)), 0) \
                       FROM session_note_amendments a WHERE a.note_id = s.id) AS size \
             FROM session_notes s WHERE s.client_id = $1 \
               AND ($2::timestamptz IS NULL OR (s.session_time, s.id) > ($2, $3)) \
             ORDER BY s.session_time, s.id LIMIT $4 \
           ) n \
         ) page WHERE through - size < $5 ORDER BY session_time, id"
    ))
    .bind(client_id)
    .bind(after_time)
    .bind(after_id)
    .bind(limit)
    .bind(max_bytes)
    .fetch_all(conn)
    .await
}

/// A plan version in the export, with its plan's creation (the order).
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ExportedPlanRow {
    #[sqlx(flatten)]
    pub version: PlanVersionRow,
    pub plan_created_at: DateTime<Utc>,
}

/// The next plan versions of a client after `after` (plan creation, plan
/// id, version), oldest plan and version first: at most `limit`, and none
/// beyond the first whose sealed bodies before it add up to `max_bytes` or
/// more (export).
pub(crate) async fn plan_versions_batch(
    conn: &mut PgConnection,
    client_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid, i32)>,
    limit: i64,
    max_bytes: i64,
) -> Result<Vec<ExportedPlanRow>, sqlx::Error> {
    let (after_time, after_id, after_version) = match after {
        Some((time, id, version)) => (Some(time), Some(id), Some(version)),
        None => (None, None, None),
    };
    sqlx::query_as(&format!(
        "SELECT * FROM ( \
           SELECT page.*, sum(octet_length(page.body)) \
                  OVER (ORDER BY page.plan_created_at, page.plan_id, page.version) AS through \
           FROM ( \
             SELECT {PLAN_VERSION_COLUMNS}, p.created_at AS plan_created_at \
             FROM training_plans p JOIN training_plan_versions v ON v.plan_id = p.id \
             WHERE p.client_id = $1 \
               AND ($2::timestamptz IS NULL OR (p.created_at, p.id, v.version) > ($2, $3, $4)) \
             ORDER BY p.created_at, p.id, v.version LIMIT $5 \
           ) page \
         ) batch WHERE through - octet_length(body) < $6 \
         ORDER BY plan_created_at, plan_id, version"
    ))
    .bind(client_id)
    .bind(after_time)
    .bind(after_id)
    .bind(after_version)
    .bind(limit)
    .bind(max_bytes)
    .fetch_all(conn)
    .await
}
