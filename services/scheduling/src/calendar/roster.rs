//! A studio's roster: the sessions booked at a studio, with their clients by
//! name, for the studio's managers. The token's studios decide who manages
//! it; row-level security admits the studio's rows only after that check;
//! the names come from the clients service, which accounts for each one.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use fitflow_auth::Principal;
use uuid::Uuid;

use super::{Calendar, user};
use crate::SchedulingError;
use crate::clients::Names;
use crate::repo::{self, RosterParticipantRow, RosterSessionRow};

/// A client in a roster's session.
#[derive(Debug, Clone)]
pub(crate) struct RosterClient {
    pub client_id: Uuid,
    /// `None` for a client deleted or purged since.
    pub names: Option<Names>,
    /// `confirmed` or `waitlisted`.
    pub status: String,
    pub attended: Option<bool>,
}

/// A session of a roster with its clients.
#[derive(Debug, Clone)]
pub(crate) struct RosterSession {
    pub row: RosterSessionRow,
    pub clients: Vec<RosterClient>,
}

/// Which page of which roster.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RosterQuery {
    pub studio_id: Uuid,
    pub window: (DateTime<Utc>, DateTime<Utc>),
    pub show_cancelled: bool,
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub page_size: u32,
}

/// The clients of each session: its own client (individual and trial), or
/// its participants in the order read (confirmed first, then the waitlist).
fn clients_of(
    sessions: &[RosterSessionRow],
    participants: Vec<RosterParticipantRow>,
) -> HashMap<Uuid, Vec<(Uuid, String, Option<bool>)>> {
    let mut by_session: HashMap<Uuid, Vec<(Uuid, String, Option<bool>)>> = HashMap::new();
    for session in sessions {
        if let Some(client_id) = session.client_id {
            by_session.entry(session.id).or_default().push((
                client_id,
                "confirmed".to_owned(),
                session.client_attended,
            ));
        }
    }
    for participant in participants {
        by_session
            .entry(participant.appointment_id)
            .or_default()
            .push((
                participant.client_id,
                participant.status,
                participant.attended,
            ));
    }
    by_session
}

impl Calendar {
    /// One page of `query.studio_id`'s roster for a manager of the studio,
    /// and the next page's position.
    pub(crate) async fn roster(
        &self,
        principal: &Principal,
        bearer: &str,
        query: RosterQuery,
    ) -> Result<(Vec<RosterSession>, Option<(DateTime<Utc>, Uuid)>), SchedulingError> {
        if !principal.studio_ids.contains(&query.studio_id) {
            return Err(SchedulingError::StudioNotManaged);
        }
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        repo::admit_studio_manager(&mut tx, query.studio_id).await?;
        let mut sessions = repo::roster_sessions(
            &mut tx,
            query.studio_id,
            query.window,
            query.show_cancelled,
            query.after,
            i64::from(query.page_size) + 1,
        )
        .await?;
        let next = fitflow_api::page::split_page(&mut sessions, query.page_size, |row| {
            (row.start_time, row.id)
        });
        let keys: Vec<(Uuid, DateTime<Utc>)> = sessions
            .iter()
            .map(|session| (session.id, session.start_time))
            .collect();
        let participants = if keys.is_empty() {
            Vec::new()
        } else {
            repo::roster_participants(&mut tx, &keys).await?
        };
        fitflow_db::end_read(tx);
        let mut by_session = clients_of(&sessions, participants);
        // Each client once, in the order shown.
        let mut seen = HashSet::new();
        let ids: Vec<Uuid> = sessions
            .iter()
            .flat_map(|session| by_session.get(&session.id).into_iter().flatten())
            .map(|(client_id, _, _)| *client_id)
            .filter(|client_id| seen.insert(*client_id))
            .collect();
        // Asked after the read transaction ended: none waits on the network.
        let names = if ids.is_empty() {
            HashMap::new()
        } else {
            self.clients
                .roster_names(bearer, query.studio_id, &ids)
                .await?
        };
        let roster = sessions
            .into_iter()
            .map(|row| {
                let clients = by_session
                    .remove(&row.id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(client_id, status, attended)| RosterClient {
                        client_id,
                        names: names.get(&client_id).cloned(),
                        status,
                        attended,
                    })
                    .collect();
                RosterSession { row, clients }
            })
            .collect();
        Ok((roster, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(client_id: Option<Uuid>) -> RosterSessionRow {
        RosterSessionRow {
            id: Uuid::new_v4(),
            trainer_id: Uuid::new_v4(),
            class_type_id: Uuid::new_v4(),
            class_type_name: "Yoga".into(),
            category: if client_id.is_some() {
                "individual"
            } else {
                "group"
            }
            .into(),
            max_participants: 10,
            start_time: Utc::now(),
            end_time: Utc::now(),
            status: "scheduled".into(),
            client_id,
            client_attended: Some(true),
        }
    }

    #[test]
    fn a_sessions_own_client_and_a_classs_participants_both_appear_in_order() {
        let alone = Uuid::new_v4();
        let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
        let individual = session(Some(alone));
        let group = session(None);
        let participants = vec![
            RosterParticipantRow {
                appointment_id: group.id,
                client_id: first,
                status: "confirmed".into(),
                attended: None,
            },
            RosterParticipantRow {
                appointment_id: group.id,
                client_id: second,
                status: "waitlisted".into(),
                attended: None,
            },
        ];
        let by_session = clients_of(&[individual.clone(), group.clone()], participants);
        assert_eq!(
            by_session[&individual.id],
            vec![(alone, "confirmed".to_owned(), Some(true))]
        );
        let order: Vec<Uuid> = by_session[&group.id].iter().map(|(id, _, _)| *id).collect();
        assert_eq!(order, vec![first, second]);
    }
}
