//! Identity's revocation stream as every service's verifier follows it:
//! `WatchRevocations` over mTLS, its responses turned into the verifier's
//! entries.

use std::sync::Arc;

use fitflow_auth::{Revocation, RevocationBatch, RevocationSource, RevocationStream};
use fitflow_proto::identity as pb;
use fitflow_proto::identity::identity_service_client::IdentityServiceClient;
use futures::StreamExt as _;
use tonic::transport::Channel;
use uuid::Uuid;

/// Subscribes to `WatchRevocations` on identity's `channel`.
pub(crate) fn identity_source(channel: Channel) -> RevocationSource {
    let client = IdentityServiceClient::new(channel);
    Arc::new(move |after| {
        let mut client = client.clone();
        Box::pin(async move {
            // No deadline: the stream lives as long as identity serves it.
            let responses = client
                .watch_revocations(pb::WatchRevocationsRequest {
                    after_position: after,
                })
                .await
                .map_err(|status| format!("WatchRevocations failed: {:?}", status.code()))?
                .into_inner();
            let batches: RevocationStream = responses
                .map(|response| {
                    response
                        .map(batch_from_proto)
                        .map_err(|status| format!("the stream failed: {:?}", status.code()))
                })
                .boxed();
            Ok(batches)
        })
    })
}

/// The verifier's batch of a response. An entry it cannot read (an unknown
/// kind from a newer identity, a malformed id) is skipped with an error
/// log: refusing the whole batch would resubscribe to the same entry
/// forever and block every revocation behind it.
fn batch_from_proto(response: pb::WatchRevocationsResponse) -> RevocationBatch {
    let revocations = response
        .revocations
        .into_iter()
        .filter_map(|entry| {
            let position = entry.position;
            let read = revocation_from_proto(entry);
            if read.is_none() {
                tracing::error!(position, "an unreadable revocation entry was skipped");
            }
            read
        })
        .collect();
    RevocationBatch {
        revocations,
        position: response.position,
        caught_up: response.caught_up,
    }
}

fn revocation_from_proto(entry: pb::Revocation) -> Option<Revocation> {
    let subject = Uuid::try_parse(&entry.subject_id).ok()?;
    let issued_before = entry.issued_before?.seconds;
    let expires_at = entry.expire_time?.seconds;
    match pb::RevocationKind::try_from(entry.kind).ok()? {
        pb::RevocationKind::SessionRevoked => Some(Revocation::SessionRevoked {
            session_id: subject,
            expires_at,
        }),
        pb::RevocationKind::UserDisabled => Some(Revocation::UserDisabled {
            user_id: subject,
            issued_before,
            expires_at,
        }),
        pb::RevocationKind::ClaimsStale => Some(Revocation::ClaimsStale {
            user_id: subject,
            issued_before,
            expires_at,
        }),
        pb::RevocationKind::Unspecified => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(seconds: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds, nanos: 0 })
    }

    #[test]
    fn entries_become_the_verifiers_and_unreadable_ones_are_skipped() {
        let user = Uuid::new_v4();
        let batch = batch_from_proto(pb::WatchRevocationsResponse {
            revocations: vec![
                pb::Revocation {
                    position: 4,
                    kind: pb::RevocationKind::ClaimsStale.into(),
                    subject_id: user.to_string(),
                    issued_before: time(100),
                    expire_time: time(1_031),
                },
                pb::Revocation {
                    position: 5,
                    kind: 99,
                    subject_id: user.to_string(),
                    issued_before: time(100),
                    expire_time: time(1_031),
                },
                pb::Revocation {
                    position: 6,
                    kind: pb::RevocationKind::SessionRevoked.into(),
                    subject_id: "not a uuid".into(),
                    issued_before: time(100),
                    expire_time: time(1_031),
                },
            ],
            position: 6,
            caught_up: true,
        });
        assert_eq!(
            batch,
            RevocationBatch {
                revocations: vec![Revocation::ClaimsStale {
                    user_id: user,
                    issued_before: 100,
                    expires_at: 1_031,
                }],
                position: 6,
                caught_up: true,
            }
        );
    }
}
