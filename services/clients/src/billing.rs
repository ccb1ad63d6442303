//! What clients asks billing: a client's invoices, credit notes, payments,
//! refunds and session packs, for the client's export (billing's internal
//! `StreamClientInvoices`), as canonical protobuf JSON.

use std::time::Duration;

use fitflow_proto::billing::StreamClientInvoicesRequest;
use fitflow_proto::billing::billing_service_client::BillingServiceClient;
use fitflow_server::client::peer_request;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::ClientsError;
use crate::section::Section;

/// Longest wait for billing when the caller set no shorter deadline.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest message read: gRPC's default. Billing streams the export in
/// messages of at most 3 MiB, and one invoice (at most 200 lines) always
/// fits alone.
const MAX_MESSAGE: usize = 4 * 1024 * 1024;
/// Most bytes of billing records one export holds (the document is built in
/// memory, so a runaway answer cannot exhaust it): some 400 of the largest
/// invoices possible, far beyond any client's.
const MAX_EXPORT_BYTES: usize = 64 * 1024 * 1024;
/// The message whose JSON form each streamed message has.
const EXPORT_MESSAGE: &str = "fitflow.billing.v1.StreamClientInvoicesResponse";
/// The section's arrays, in the proto3 JSON names.
const SECTION_ARRAYS: &[&str] = &["invoices", "payments", "sessionPacks"];

/// Billing's records of clients, over mTLS.
#[derive(Clone)]
pub struct Invoices {
    client: BillingServiceClient<Channel>,
}

impl Invoices {
    /// Asks billing over `channel`.
    pub fn new(channel: Channel) -> Self {
        Self {
            client: BillingServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE),
        }
    }

    /// Every invoice (with its lines and taxes), credit note, payment and
    /// refund billed to `client_id`, in the proto3 JSON mapping of
    /// `StreamClientInvoicesResponse` (the contract's own names): the
    /// streamed messages' `invoices`, `payments` and `sessionPacks`
    /// concatenated in order.
    pub(crate) async fn of_client(
        &self,
        client_id: Uuid,
    ) -> Result<serde_json::Value, ClientsError> {
        let timeout = fitflow_server::deadline::remaining()
            .map_or(EXPORT_TIMEOUT, |remaining| remaining.min(EXPORT_TIMEOUT));
        let request = peer_request(
            StreamClientInvoicesRequest {
                client_id: client_id.to_string(),
            },
            timeout,
        );
        let deadline = tokio::time::Instant::now() + timeout;
        let section = Section::new(
            EXPORT_MESSAGE,
            SECTION_ARRAYS,
            MAX_EXPORT_BYTES,
            "billing export",
        )?;
        let mut client = self.client.clone();
        let stream = client
            .stream_client_invoices(request)
            .await
            .map(tonic::Response::into_inner)
            // Billing's answer is not the caller's business beyond "down".
            .map_err(|_| ClientsError::BillingUnavailable)?;
        section
            .read_all(stream, deadline, || ClientsError::BillingUnavailable)
            .await
    }
}
