//! Whom an issued document is addressed to: the client's name, email and
//! postal address as clients' `GetContact` gave them at issue, or the
//! studio's name, email and address as tenancy showed them. Stored
//! sealed under the issuing trainer's data key (never the client's, so a
//! purge of the client leaves the financial record whole), bound to the
//! document's row; opened only to print the document.

use fitflow_crypto::FieldAddress;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::pdf::Language;

/// The table holding sealed recipients (part of their associated data).
pub(crate) const TABLE: &str = "invoice_recipients";
/// The column holding them.
pub(crate) const COLUMN: &str = "recipient";

/// Where document `id`'s recipient is sealed.
pub(crate) fn address(id: Uuid) -> FieldAddress<'static> {
    FieldAddress {
        table: TABLE,
        column: COLUMN,
        row_id: id,
    }
}

/// A client's (or a studio's) contact as at issue. Debug never prints it.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct Recipient {
    /// A studio's name; empty for a client (recipients sealed before
    /// studios were billed have none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub organisation: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    /// Street lines joined by a line feed; empty when no address is known.
    pub street: String,
    pub city: String,
    /// "QC", …; empty when no address is known.
    pub province: String,
    pub postal_code: String,
}

impl std::fmt::Debug for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recipient(<redacted>)")
    }
}

impl Recipient {
    /// The language the client's documents print in: French for a client
    /// whose address is in Quebec, English otherwise (Charter of the French
    /// language, s. 55: invoices to Quebec customers in French).
    pub(crate) fn language(&self) -> Language {
        if self.province == "QC" {
            Language::French
        } else {
            Language::English
        }
    }

    /// The "bill to" block: name, street lines, city line, email.
    pub(crate) fn lines(&self) -> Vec<String> {
        let name = if self.organisation.is_empty() {
            format!("{} {}", self.first_name, self.last_name)
        } else {
            self.organisation.clone()
        };
        let mut lines = vec![name.trim().to_owned()];
        lines.extend(
            self.street
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(str::to_owned),
        );
        let city = [self.city.as_str(), self.province.as_str()]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let city = [city.as_str(), self.postal_code.as_str()]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if !city.is_empty() {
            lines.push(city);
        }
        if !self.email.is_empty() {
            lines.push(self.email.clone());
        }
        lines.retain(|line| !line.is_empty());
        lines
    }

    /// The bytes sealed.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        // A struct of strings always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The bytes opened, read back; None when they are not a recipient.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zoe() -> Recipient {
        Recipient {
            organisation: String::new(),
            first_name: "Zoé".into(),
            last_name: "Roy".into(),
            email: "zoe@example.com".into(),
            street: "1 rue Principale\napp. 3".into(),
            city: "Montréal".into(),
            province: "QC".into(),
            postal_code: "H2X 1Y4".into(),
        }
    }

    #[test]
    fn a_client_in_quebec_is_billed_in_french_and_everyone_else_in_english() {
        assert_eq!(zoe().language(), Language::French);
        let ontario = Recipient {
            province: "ON".into(),
            ..zoe()
        };
        assert_eq!(ontario.language(), Language::English);
        assert_eq!(Recipient::default().language(), Language::English);
    }

    #[test]
    fn the_bill_to_block_has_the_name_street_lines_city_and_email() {
        assert_eq!(
            zoe().lines(),
            [
                "Zoé Roy",
                "1 rue Principale",
                "app. 3",
                "Montréal QC H2X 1Y4",
                "zoe@example.com"
            ]
        );
        let name_only = Recipient {
            first_name: "Zoé".into(),
            ..Recipient::default()
        };
        assert_eq!(name_only.lines(), ["Zoé"]);
    }

    #[test]
    fn a_studio_is_billed_under_its_name_and_an_older_snapshot_still_reads() {
        let studio = Recipient {
            organisation: "Studio Kits".into(),
            email: "hello@kits.example".into(),
            city: "Vancouver".into(),
            province: "BC".into(),
            ..Recipient::default()
        };
        assert_eq!(
            studio.lines(),
            ["Studio Kits", "Vancouver BC", "hello@kits.example"]
        );
        assert_eq!(Recipient::from_bytes(&studio.to_bytes()), Some(studio));
        // Sealed before studios were billed: no `organisation` key.
        let older = br#"{"first_name":"Zo\u00e9","last_name":"Roy","email":"","street":"","city":"","province":"QC","postal_code":""}"#;
        let read = Recipient::from_bytes(older).expect("an older snapshot");
        assert_eq!(read.lines(), ["Zoé Roy", "QC"]);
    }

    #[test]
    fn a_recipient_reads_back_as_sealed_and_its_debug_hides_it() {
        let bytes = zoe().to_bytes();
        assert_eq!(Recipient::from_bytes(&bytes), Some(zoe()));
        assert_eq!(Recipient::from_bytes(b"not json"), None);
        assert_eq!(format!("{:?}", zoe()), "Recipient(<redacted>)");
    }
}
