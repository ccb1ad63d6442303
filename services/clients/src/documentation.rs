//! What clients asks documentation: a client's session notes and training
//! plans, for the client's export (documentation's internal
//! `StreamClientDocumentation`), as canonical protobuf JSON.

use std::time::Duration;

use fitflow_proto::documentation::StreamClientDocumentationRequest;
use fitflow_proto::documentation::documentation_service_client::DocumentationServiceClient;
use fitflow_server::client::peer_request;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::ClientsError;
use crate::section::Section;

/// Longest wait for documentation when the caller set no shorter deadline.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest message read: gRPC's default. Documentation streams the export
/// in messages of at most 3 MiB of notes and plans, and one note with its
/// whole history or one plan always fits alone.
const MAX_MESSAGE: usize = 4 * 1024 * 1024;
/// Most bytes of documentation one export holds (the document is built in
/// memory, so a runaway answer cannot exhaust it).
const MAX_EXPORT_BYTES: usize = 256 * 1024 * 1024;
/// The message whose JSON form each streamed message has: its fields are
/// those of `ExportClientDocumentationResponse`, the section's shape.
const EXPORT_MESSAGE: &str = "fitflow.documentation.v1.StreamClientDocumentationResponse";
/// The section's arrays, in the proto3 JSON names.
const SECTION_ARRAYS: &[&str] = &["notes", "planVersions"];

/// Documentation's records of clients, over mTLS.
#[derive(Clone)]
pub struct Documentation {
    client: DocumentationServiceClient<Channel>,
}

impl Documentation {
    /// Asks documentation over `channel`.
    pub fn new(channel: Channel) -> Self {
        Self {
            client: DocumentationServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE),
        }
    }

    /// Every note and plan version of `client_id`, as the proto3 JSON
    /// mapping of `ExportClientDocumentationResponse` (the contract's own
    /// names, so the document reads like the API): the streamed messages'
    /// `notes` and `planVersions` concatenated in order.
    pub(crate) async fn of_client(
        &self,
        client_id: Uuid,
    ) -> Result<serde_json::Value, ClientsError> {
        let timeout = fitflow_server::deadline::remaining()
            .map_or(EXPORT_TIMEOUT, |remaining| remaining.min(EXPORT_TIMEOUT));
        let request = peer_request(
            StreamClientDocumentationRequest {
                client_id: client_id.to_string(),
            },
            timeout,
        );
        let deadline = tokio::time::Instant::now() + timeout;
        let section = Section::new(
            EXPORT_MESSAGE,
            SECTION_ARRAYS,
            MAX_EXPORT_BYTES,
            "documentation export",
        )?;
        let mut client = self.client.clone();
        let stream = client
            .stream_client_documentation(request)
            .await
            .map(tonic::Response::into_inner)
            // Documentation's answer is not the caller's business beyond "down".
            .map_err(|_| ClientsError::DocumentationUnavailable)?;
        section
            .read_all(stream, deadline, || ClientsError::DocumentationUnavailable)
            .await
    }
}
