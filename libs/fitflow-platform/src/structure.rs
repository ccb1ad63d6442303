//! Tenancy's `GetActingFor` as every verifier asks it to complete a token
//! that says `claims_truncated` (see `fitflow_auth::structure`).

use std::sync::Arc;
use std::time::Duration;

use fitflow_auth::{ActingFor, MAX_ACTING_FOR_IDS, StructureSource};
use fitflow_proto::tenancy::GetActingForRequest;
use fitflow_proto::tenancy::tenancy_service_client::TenancyServiceClient;
use fitflow_server::client::peer_request;
use tonic::transport::Channel;
use uuid::Uuid;

/// Longest wait for tenancy's answer, within the request's own deadline.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest answer accepted: 2 × 10,000 ids of 36 characters and framing.
const MAX_ANSWER: usize = 2 * 1024 * 1024;

/// Asks tenancy over `channel` (this service's own mTLS identity).
pub(crate) fn tenancy_source(channel: Channel) -> StructureSource {
    let client = TenancyServiceClient::new(fitflow_server::client::traced(channel))
        .max_decoding_message_size(MAX_ANSWER);
    Arc::new(move |user_id: Uuid| {
        let mut client = client.clone();
        Box::pin(async move {
            let request = peer_request(
                GetActingForRequest {
                    user_id: user_id.to_string(),
                    limit: MAX_ACTING_FOR_IDS,
                },
                ASK_TIMEOUT,
            );
            let response = client
                .get_acting_for(request)
                .await
                .map_err(|status| format!("GetActingFor failed: {:?}", status.code()))?
                .into_inner();
            let parse = |ids: &[String]| -> Result<Vec<Uuid>, String> {
                ids.iter()
                    .map(|id| Uuid::try_parse(id).map_err(|_| "a malformed id".to_owned()))
                    .collect()
            };
            Ok(ActingFor {
                trainer_ids: parse(&response.trainer_ids)?,
                studio_ids: parse(&response.studio_ids)?,
                truncated: response.truncated,
            })
        })
    })
}
