//! What clients asks documentation: a client's session notes and training
//! plans, for the client's export (documentation's internal
//! `ExportClientDocumentation`), as canonical protobuf JSON.

use std::sync::LazyLock;
use std::time::Duration;

use fitflow_proto::documentation::ExportClientDocumentationRequest;
use fitflow_proto::documentation::documentation_service_client::DocumentationServiceClient;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage};
use tonic::transport::Channel;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::ClientsError;

/// Longest wait for documentation when the caller set no shorter deadline.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest export answer read: a client's whole documentation is one
/// message, which a few long notes already take past tonic's 4 MiB default;
/// still bounded, so a runaway answer cannot exhaust memory.
const MAX_EXPORT_MESSAGE: usize = 256 * 1024 * 1024;
/// The message whose JSON form the export holds.
const EXPORT_MESSAGE: &str = "fitflow.documentation.v1.ExportClientDocumentationResponse";

/// The contracts' descriptors, decoded once per process (not per export).
static DESCRIPTORS: LazyLock<Option<DescriptorPool>> =
    LazyLock::new(|| DescriptorPool::decode(fitflow_proto::FILE_DESCRIPTOR_SET).ok());

/// Documentation's records of clients, over mTLS.
#[derive(Clone)]
pub struct Documentation {
    client: DocumentationServiceClient<Channel>,
}

impl Documentation {
    /// Asks documentation over `channel`.
    pub fn new(channel: Channel) -> Self {
        Self {
            client: DocumentationServiceClient::new(channel)
                .max_decoding_message_size(MAX_EXPORT_MESSAGE),
        }
    }

    /// Every note and plan version of `client_id`, as the proto3 JSON
    /// mapping of `ExportClientDocumentationResponse` (the contract's own
    /// names, so the document reads like the API).
    pub(crate) async fn of_client(
        &self,
        client_id: Uuid,
    ) -> Result<serde_json::Value, ClientsError> {
        let mut request = tonic::Request::new(ExportClientDocumentationRequest {
            client_id: client_id.to_string(),
        });
        let timeout = fitflow_server::deadline::remaining()
            .map_or(EXPORT_TIMEOUT, |remaining| remaining.min(EXPORT_TIMEOUT));
        request.set_timeout(timeout);
        // The outer timeout also bounds connecting and the TLS handshake.
        let mut client = self.client.clone();
        let answer = tokio::time::timeout(timeout, client.export_client_documentation(request))
            .await
            .map_err(|_| ClientsError::DocumentationUnavailable)?
            .map(tonic::Response::into_inner)
            // Documentation's answer is not the caller's business beyond "down".
            .map_err(|_| ClientsError::DocumentationUnavailable)?;
        let bytes = Zeroizing::new(answer.encode_to_vec());
        let descriptor = DESCRIPTORS
            .as_ref()
            .ok_or(ClientsError::Corrupt("descriptor set"))?
            .get_message_by_name(EXPORT_MESSAGE)
            .ok_or(ClientsError::Corrupt("export message descriptor"))?;
        let message = DynamicMessage::decode(descriptor, bytes.as_slice())
            .map_err(|_| ClientsError::Corrupt("documentation export"))?;
        serde_json::to_value(&message).map_err(|_| ClientsError::Corrupt("documentation export"))
    }
}
