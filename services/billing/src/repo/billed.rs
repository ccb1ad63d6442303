//! `billed_items`: each (appointment, client, charge) billed on an invoice
//! that is not void, once (its primary key).

use sqlx::PgConnection;
use uuid::Uuid;

/// Bills item (`appointment_id`, `client_id`, `charge`) on `invoice_id`:
/// true when this transaction now holds it, false when another invoice
/// does. A concurrent claim of the same item waits for the other
/// transaction and then finds the key taken (or free, if it rolled back).
pub(crate) async fn claim_item(
    conn: &mut PgConnection,
    (appointment_id, client_id, charge): (Uuid, Uuid, &str),
    invoice_id: Uuid,
    issuer_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(
        "INSERT INTO billed_items (appointment_id, client_id, charge, invoice_id, issuer_id) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(appointment_id)
    .bind(client_id)
    .bind(charge)
    .bind(invoice_id)
    .bind(issuer_id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(claimed == 1)
}

/// The items billed on `invoice_id`: (appointment, client, charge).
pub(crate) async fn billed_items_of(
    conn: &mut PgConnection,
    invoice_id: Uuid,
) -> Result<Vec<(Uuid, Uuid, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT appointment_id, client_id, charge FROM billed_items WHERE invoice_id = $1 \
         ORDER BY appointment_id, client_id, charge",
    )
    .bind(invoice_id)
    .fetch_all(conn)
    .await
}

/// Frees one item of `invoice_id` (its line left the draft).
pub(crate) async fn free_item(
    conn: &mut PgConnection,
    invoice_id: Uuid,
    (appointment_id, client_id, charge): (Uuid, Uuid, &str),
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM billed_items WHERE invoice_id = $1 AND appointment_id = $2 \
         AND client_id = $3 AND charge = $4",
    )
    .bind(invoice_id)
    .bind(appointment_id)
    .bind(client_id)
    .bind(charge)
    .execute(conn)
    .await?;
    Ok(())
}

/// Frees every item of `invoice_id` (it is voided); how many.
pub(crate) async fn free_items(
    conn: &mut PgConnection,
    invoice_id: Uuid,
) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM billed_items WHERE invoice_id = $1")
            .bind(invoice_id)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

/// Which of `appointments` are billed for `charge` already, whoever pays.
pub(crate) async fn billed_among(
    conn: &mut PgConnection,
    charge: &str,
    appointments: &[Uuid],
) -> Result<std::collections::HashSet<Uuid>, sqlx::Error> {
    let rows: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT appointment_id FROM billed_items \
         WHERE charge = $1 AND appointment_id = ANY($2)",
    )
    .bind(charge)
    .bind(appointments)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}
