//! A section of the client's export that another service streams: each
//! message's repeated fields, in the proto3 JSON mapping (the contract's own
//! names, so the document reads like the API), concatenated in order, with
//! the bytes read bounded so a runaway answer cannot exhaust memory.

use std::sync::LazyLock;

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use zeroize::Zeroizing;

use crate::ClientsError;

/// The contracts' descriptors, decoded once per process (not per export).
static DESCRIPTORS: LazyLock<Option<DescriptorPool>> =
    LazyLock::new(|| DescriptorPool::decode(fitflow_proto::FILE_DESCRIPTOR_SET).ok());

/// A section being read: which arrays it holds, and at most how many bytes.
pub(crate) struct Section {
    descriptor: MessageDescriptor,
    arrays: &'static [&'static str],
    max_bytes: usize,
    read: usize,
    /// What a malformed answer is reported as (never its content).
    what: &'static str,
    fields: serde_json::Map<String, serde_json::Value>,
}

impl Section {
    /// A section from messages of type `message` (its full name) whose
    /// repeated fields `arrays` (proto3 JSON names) are kept, at most
    /// `max_bytes` of them; `what` names it in errors.
    pub(crate) fn new(
        message: &str,
        arrays: &'static [&'static str],
        max_bytes: usize,
        what: &'static str,
    ) -> Result<Self, ClientsError> {
        let descriptor = DESCRIPTORS
            .as_ref()
            .ok_or(ClientsError::Corrupt("descriptor set"))?
            .get_message_by_name(message)
            .ok_or(ClientsError::Corrupt("export message descriptor"))?;
        Ok(Self {
            descriptor,
            arrays,
            max_bytes,
            read: 0,
            what,
            fields: serde_json::Map::new(),
        })
    }

    /// Reads `stream` to its end, the whole of it by `deadline` (the peer
    /// request's own timeout ends only the wait for its first answer). A
    /// stream that fails or outlives the deadline is `unavailable`: the
    /// peer's answer is not the caller's business beyond "down".
    pub(crate) async fn read_all<M: Message + Default>(
        mut self,
        mut stream: tonic::Streaming<M>,
        deadline: tokio::time::Instant,
        unavailable: impl Fn() -> ClientsError,
    ) -> Result<serde_json::Value, ClientsError> {
        while let Some(message) = tokio::time::timeout_at(deadline, stream.message())
            .await
            .map_err(|_| unavailable())?
            .map_err(|_| unavailable())?
        {
            self.push(&message)?;
        }
        Ok(self.finish())
    }

    /// Appends `message`'s arrays; EXPORT_TOO_LARGE past the bound.
    pub(crate) fn push(&mut self, message: &impl Message) -> Result<(), ClientsError> {
        let bytes = Zeroizing::new(message.encode_to_vec());
        self.read += bytes.len();
        if self.read > self.max_bytes {
            return Err(ClientsError::ExportTooLarge);
        }
        let message = DynamicMessage::decode(self.descriptor.clone(), bytes.as_slice())
            .map_err(|_| ClientsError::Corrupt(self.what))?;
        let serde_json::Value::Object(fields) =
            serde_json::to_value(&message).map_err(|_| ClientsError::Corrupt(self.what))?
        else {
            return Err(ClientsError::Corrupt(self.what));
        };
        for (name, value) in fields {
            let serde_json::Value::Array(items) = value else {
                return Err(ClientsError::Corrupt(self.what));
            };
            if !self.arrays.contains(&name.as_str()) {
                return Err(ClientsError::Corrupt(self.what));
            }
            match self
                .fields
                .entry(name)
                .or_insert_with(|| serde_json::Value::Array(Vec::new()))
            {
                serde_json::Value::Array(all) => all.extend(items),
                _ => return Err(ClientsError::Corrupt(self.what)),
            }
        }
        Ok(())
    }

    /// The section as read: an object holding the arrays that had items.
    pub(crate) fn finish(self) -> serde_json::Value {
        serde_json::Value::Object(self.fields)
    }
}

#[cfg(test)]
mod tests {
    use fitflow_proto::billing::{Invoice, Payment, StreamClientInvoicesResponse};

    use super::*;

    const MESSAGE: &str = "fitflow.billing.v1.StreamClientInvoicesResponse";

    fn answer(invoices: &[&str], payments: &[&str]) -> StreamClientInvoicesResponse {
        StreamClientInvoicesResponse {
            invoices: invoices
                .iter()
                .map(|id| Invoice {
                    id: (*id).into(),
                    ..Default::default()
                })
                .collect(),
            payments: payments
                .iter()
                .map(|id| Payment {
                    id: (*id).into(),
                    ..Default::default()
                })
                .collect(),
            session_packs: Vec::new(),
        }
    }

    #[test]
    fn a_section_concatenates_each_array_in_the_order_the_messages_came() {
        let mut section =
            Section::new(MESSAGE, &["invoices", "payments"], 1024, "billing export").unwrap();
        section.push(&answer(&["a", "b"], &[])).unwrap();
        section.push(&answer(&["c"], &["p"])).unwrap();
        let json = section.finish();
        let ids = |array: &str| -> Vec<String> {
            json[array]
                .as_array()
                .unwrap()
                .iter()
                .map(|item| item["id"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(ids("invoices"), ["a", "b", "c"]);
        assert_eq!(ids("payments"), ["p"]);
    }

    #[test]
    fn a_section_past_its_bound_is_too_large_and_an_unexpected_array_is_refused() {
        let mut section =
            Section::new(MESSAGE, &["invoices", "payments"], 40, "billing export").unwrap();
        section.push(&answer(&["a"], &[])).unwrap();
        let many = answer(&["0123456789", "0123456789", "0123456789"], &[]);
        assert!(matches!(
            section.push(&many),
            Err(ClientsError::ExportTooLarge)
        ));
        let mut narrow = Section::new(MESSAGE, &["invoices"], 1024, "billing export").unwrap();
        assert!(matches!(
            narrow.push(&answer(&[], &["p"])),
            Err(ClientsError::Corrupt("billing export"))
        ));
    }
}
