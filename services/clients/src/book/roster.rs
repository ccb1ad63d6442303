//! Names on a studio's roster: what a studio's managers see of the clients
//! booked into sessions there (scheduling's `ListStudioRoster`). Scheduling
//! vouches that each client is on the studio's roster and that the user
//! manages it; this service opens first and last names only, and accounts
//! for every name shown.

use std::collections::BTreeMap;

use fitflow_auth::Principal;
use fitflow_outbox::{Action, Purpose};
use uuid::Uuid;

use super::{ClientBook, commit, event};
use crate::ClientsError;
use crate::repo;
use crate::seal::TABLE;

/// A client's name on a roster.
pub(crate) struct RosterName {
    pub client_id: Uuid,
    pub first_name: String,
    pub last_name: String,
}

impl ClientBook {
    /// The names of the live clients among `client_ids`, in the order
    /// asked, for `principal` viewing `studio_id`'s roster. Each name shown
    /// has its access event (naming the studio), committed with the read.
    pub(crate) async fn roster_names(
        &self,
        principal: &Principal,
        studio_id: Uuid,
        client_ids: &[Uuid],
    ) -> Result<Vec<RosterName>, ClientsError> {
        // The user has no access to these records, so row-level security
        // would hide them: scheduling's word (peer policy) is the grant.
        let mut tx = fitflow_db::system_tx(&self.system).await?;
        let rows = repo::live_names(&mut tx, client_ids).await?;
        // One event per client on the client itself, so "who viewed client
        // X" (audit's filter by resource) finds the roster views too.
        for row in &rows {
            let access = event(principal, Action::Read, TABLE, row.id, row.trainer_id)
                .purpose(Purpose::Operations)
                .change("view", "", "studio_roster")
                .change("studio_id", "", &studio_id.to_string())
                .build();
            fitflow_outbox::record(&mut tx, &access).await?;
        }
        let mut found = BTreeMap::new();
        for row in rows {
            let (first_name, last_name) = self
                .sealer
                .open_names(row.id, &row.first_name, &row.last_name)
                .await?;
            found.insert(
                row.id,
                RosterName {
                    client_id: row.id,
                    first_name,
                    last_name,
                },
            );
        }
        commit(tx).await?;
        Ok(client_ids
            .iter()
            .filter_map(|id| found.remove(id))
            .collect())
    }
}
