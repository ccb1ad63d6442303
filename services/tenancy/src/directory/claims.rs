//! Telling identity whose token claims a structure change made stale
//! (DESIGN.md §4): a reliable command in tenancy's outbox, written in the
//! change's own transaction, so the change and the notice commit together
//! and the platform's relay delivers it to identity's `InvalidateClaims`.

use fitflow_proto::identity::InvalidateClaimsRequest;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::TenancyError;

/// The receiving service.
const IDENTITY: &str = "identity";
/// Its internal RPC that marks tokens stale (tenancy only).
const INVALIDATE_CLAIMS: &str = "/fitflow.identity.v1.IdentityService/InvalidateClaims";

/// Writes the command marking `user_ids`' tokens stale, on `conn` (inside
/// the transaction that makes the change); nothing when there are none.
/// Structure chains are at most four levels, far below the RPC's 1,000.
pub(super) async fn invalidate(
    conn: &mut PgConnection,
    user_ids: &[Uuid],
) -> Result<(), TenancyError> {
    if user_ids.is_empty() {
        return Ok(());
    }
    let request = InvalidateClaimsRequest {
        user_ids: user_ids.iter().map(ToString::to_string).collect(),
    };
    fitflow_outbox::send(conn, IDENTITY, INVALIDATE_CLAIMS, &request).await?;
    Ok(())
}
