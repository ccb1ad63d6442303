//! The hash chain: each source's events are links, each hashing the previous
//! link, so an edited or deleted row is detectable.

use ring::digest;
use uuid::Uuid;

use super::event::{
    ActorRef, EventDraft, StoredColumns, ValidEvent, action_name, parse_stored_event, purpose_name,
};

/// The `prev_hash` of the first link of every chain.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// The hash of a chain link: SHA-256 over the previous link's hash, the
/// link's sequence and a canonical, length-prefixed encoding of the event.
pub fn chain_hash(prev_hash: &[u8], sequence: i64, event: &ValidEvent) -> [u8; 32] {
    let mut canonical = CanonicalEncoder::default();
    canonical.bytes(b"fitflow.audit.chain.v1");
    canonical.bytes(prev_hash);
    canonical.bytes(&sequence.to_be_bytes());
    canonical.bytes(event.event_id.as_bytes());
    canonical.text(&event.source_service);
    match &event.actor {
        ActorRef::User(user_id) => {
            canonical.text("user");
            canonical.bytes(user_id.as_bytes());
        }
        ActorRef::Service(service) => {
            canonical.text("service");
            canonical.text(service);
        }
    }
    canonical.text(action_name(event.action));
    canonical.text(&event.resource_type);
    canonical.bytes(event.resource_id.as_bytes());
    canonical.bytes(
        &u64::try_from(event.changes.len())
            .unwrap_or(u64::MAX)
            .to_be_bytes(),
    );
    for change in &event.changes {
        canonical.text(&change.field);
        canonical.text(&change.old_value);
        canonical.text(&change.new_value);
        canonical.bytes(&[u8::from(change.hashed)]);
    }
    canonical.optional_text(
        event
            .client_address
            .map(|address| address.to_string())
            .as_deref(),
    );
    canonical.optional_text(event.user_agent.as_deref());
    canonical.optional_text(event.purpose.map(purpose_name));
    canonical.optional_text(event.trace_id.as_deref());
    canonical.bytes(&event.occurred_at.timestamp_micros().to_be_bytes());
    canonical.optional_text(event.tenant_id.map(|id| id.to_string()).as_deref());
    let digest = digest::digest(&digest::SHA256, &canonical.0);
    let mut hash = [0; 32];
    hash.copy_from_slice(digest.as_ref());
    hash
}

/// Length-prefixed concatenation, so that no two different field lists
/// encode to the same bytes.
#[derive(Default)]
struct CanonicalEncoder(Vec<u8>);

impl CanonicalEncoder {
    fn bytes(&mut self, bytes: &[u8]) {
        let length = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        self.0.extend_from_slice(&length.to_be_bytes());
        self.0.extend_from_slice(bytes);
    }

    fn text(&mut self, text: &str) {
        self.bytes(text.as_bytes());
    }

    fn optional_text(&mut self, text: Option<&str>) {
        match text {
            Some(text) => {
                self.0.push(1);
                self.text(text);
            }
            None => self.0.push(0),
        }
    }
}

/// One stored link of a chain, as read back for verification.
#[derive(Debug, Clone)]
pub struct ChainLink {
    /// The link's position.
    pub sequence: i64,
    /// The previous link's hash, as stored.
    pub prev_hash: Vec<u8>,
    /// This link's hash, as stored.
    pub hash: Vec<u8>,
    /// The stored event as decoded, or `None` when its bytes no longer decode.
    pub event: Option<EventDraft>,
    /// The row's queryable columns.
    pub columns: StoredColumns,
}

/// What is wrong with the first broken link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakKind {
    /// The link with this sequence is missing (deleted).
    Missing,
    /// The stored event no longer decodes or validates.
    EventUnreadable,
    /// The row's columns no longer match its hashed event.
    ColumnsAltered,
    /// `prev_hash` is not the previous link's hash.
    PrevHashMismatch,
    /// The stored hash is not the hash of the stored event.
    HashMismatch,
    /// The chain head names a sequence or hash the last link does not have.
    HeadMismatch,
}

/// The first broken link of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainBreak {
    /// The sequence at which the chain breaks.
    pub sequence: i64,
    /// What is wrong there.
    pub kind: BreakKind,
}

/// The outcome of verifying one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// The chain (source service).
    pub chain: String,
    /// Links checked and found intact before the first break.
    pub verified_links: u64,
    /// The first break, or `None` when the chain is intact.
    pub first_break: Option<ChainBreak>,
    /// The event id of the broken row, when the break is in a row that exists.
    pub broken_event_id: Option<Uuid>,
}

impl ChainReport {
    /// Whether the chain is intact.
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none()
    }
}

/// Recomputes a chain link by link, in sequence order, remembering only the
/// previous hash, so a chain of any length verifies in constant memory.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    chain: String,
    expected_sequence: i64,
    prev_hash: Vec<u8>,
    verified_links: u64,
    first_break: Option<ChainBreak>,
    broken_event_id: Option<Uuid>,
}

impl ChainVerifier {
    /// A verifier for `chain` (a source service), expecting link 1 next.
    pub fn new(chain: &str) -> Self {
        Self {
            chain: chain.to_owned(),
            expected_sequence: 1,
            prev_hash: GENESIS_HASH.to_vec(),
            verified_links: 0,
            first_break: None,
            broken_event_id: None,
        }
    }

    /// Accepts the next link as archived: its row was exported by the
    /// retention archive and dropped, and only its sequence and hash were
    /// kept, so the next link's `prev_hash` still has something to match.
    pub fn push_archived(&mut self, sequence: i64, hash: Vec<u8>) -> bool {
        if self.first_break.is_some() {
            return false;
        }
        if sequence != self.expected_sequence {
            self.first_break = Some(ChainBreak {
                sequence: self.expected_sequence,
                kind: BreakKind::Missing,
            });
            return false;
        }
        self.prev_hash = hash;
        self.expected_sequence += 1;
        self.verified_links += 1;
        true
    }

    /// Checks the next link; returns whether the chain is still intact (once
    /// it is broken, further links are ignored).
    pub fn push(&mut self, link: ChainLink) -> bool {
        if self.first_break.is_some() {
            return false;
        }
        match self.check(&link) {
            Ok(()) => {
                self.prev_hash = link.hash;
                self.expected_sequence += 1;
                self.verified_links += 1;
                true
            }
            Err(broken) => {
                if broken.kind != BreakKind::Missing {
                    self.broken_event_id = Some(link.columns.event_id);
                }
                self.first_break = Some(broken);
                false
            }
        }
    }

    fn check(&self, link: &ChainLink) -> Result<(), ChainBreak> {
        let broken = |sequence, kind| ChainBreak { sequence, kind };
        if link.sequence != self.expected_sequence {
            return Err(broken(self.expected_sequence, BreakKind::Missing));
        }
        let event = link
            .event
            .as_ref()
            .and_then(parse_stored_event)
            .ok_or(broken(link.sequence, BreakKind::EventUnreadable))?;
        if event.columns() != link.columns || event.source_service != self.chain {
            return Err(broken(link.sequence, BreakKind::ColumnsAltered));
        }
        if link.prev_hash != self.prev_hash {
            return Err(broken(link.sequence, BreakKind::PrevHashMismatch));
        }
        if chain_hash(&self.prev_hash, link.sequence, &event).as_slice() != link.hash.as_slice() {
            return Err(broken(link.sequence, BreakKind::HashMismatch));
        }
        Ok(())
    }

    /// The report, checking the last link against the chain `head` (its last
    /// sequence and hash, if the chain has one), which catches a deleted tail.
    pub fn finish(self, head: Option<(i64, Vec<u8>)>) -> ChainReport {
        let last_sequence = self.expected_sequence - 1;
        let first_break = self.first_break.or_else(|| {
            let broken = |sequence, kind| Some(ChainBreak { sequence, kind });
            match head {
                Some((head_sequence, _)) if head_sequence > last_sequence => {
                    broken(last_sequence + 1, BreakKind::Missing)
                }
                Some((head_sequence, head_hash))
                    if head_sequence != last_sequence || head_hash != self.prev_hash =>
                {
                    broken(head_sequence, BreakKind::HeadMismatch)
                }
                None if last_sequence > 0 => broken(last_sequence, BreakKind::HeadMismatch),
                _ => None,
            }
        });
        ChainReport {
            chain: self.chain,
            verified_links: self.verified_links,
            first_break,
            broken_event_id: self.broken_event_id,
        }
    }
}

/// Recomputes a chain from its links in sequence order and reports the first
/// break. `head` is the chain head (last sequence and hash), if any.
pub fn verify_links(
    chain: &str,
    links: impl IntoIterator<Item = ChainLink>,
    head: Option<(i64, Vec<u8>)>,
) -> ChainReport {
    let mut verifier = ChainVerifier::new(chain);
    for link in links {
        if !verifier.push(link) {
            break;
        }
    }
    verifier.finish(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_support::{now, update_event};
    use crate::domain::validate_event;

    #[test]
    fn the_chain_hash_depends_on_the_previous_hash_the_sequence_and_every_field() {
        let event = validate_event(&update_event(), 0, now()).expect("valid");
        let first = chain_hash(&GENESIS_HASH, 1, &event);
        assert_eq!(first, chain_hash(&GENESIS_HASH, 1, &event));
        assert_ne!(first, chain_hash(&GENESIS_HASH, 2, &event));
        assert_ne!(first, chain_hash(&[1; 32], 1, &event));
        let mut edited = event;
        edited.changes[0].new_value = "active".to_owned();
        assert_ne!(first, chain_hash(&GENESIS_HASH, 1, &edited));
    }

    #[test]
    fn length_prefixes_keep_shifted_field_boundaries_apart() {
        let mut left = validate_event(&update_event(), 0, now()).expect("valid");
        let mut right = left.clone();
        left.changes[0].old_value = "ab".to_owned();
        left.changes[0].new_value = "c".to_owned();
        right.changes[0].old_value = "a".to_owned();
        right.changes[0].new_value = "bc".to_owned();
        assert_ne!(
            chain_hash(&GENESIS_HASH, 1, &left),
            chain_hash(&GENESIS_HASH, 1, &right)
        );
    }

    fn chain_of(count: i64) -> Vec<ChainLink> {
        let mut prev_hash = GENESIS_HASH.to_vec();
        (1..=count)
            .map(|sequence| {
                let draft = update_event();
                let event = validate_event(&draft, 0, now()).expect("valid");
                let hash = chain_hash(&prev_hash, sequence, &event).to_vec();
                let link = ChainLink {
                    sequence,
                    prev_hash: prev_hash.clone(),
                    hash: hash.clone(),
                    event: Some(draft),
                    columns: event.columns(),
                };
                prev_hash = hash;
                link
            })
            .collect()
    }

    fn head_of(links: &[ChainLink]) -> Option<(i64, Vec<u8>)> {
        links.last().map(|link| (link.sequence, link.hash.clone()))
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let links = chain_of(3);
        let head = head_of(&links);
        let report = verify_links("clients", links, head);
        assert!(report.is_intact(), "{report:?}");
        assert_eq!(report.verified_links, 3);
    }

    #[test]
    fn a_deleted_link_is_reported_as_missing_at_its_sequence() {
        let mut links = chain_of(4);
        let head = head_of(&links);
        links.remove(1);
        let report = verify_links("clients", links, head);
        assert_eq!(
            report.first_break,
            Some(ChainBreak {
                sequence: 2,
                kind: BreakKind::Missing
            })
        );
        assert_eq!(report.verified_links, 1);
    }

    #[test]
    fn a_deleted_last_link_is_caught_by_the_chain_head() {
        let mut links = chain_of(3);
        let head = head_of(&links);
        links.pop();
        let report = verify_links("clients", links, head);
        assert_eq!(
            report.first_break,
            Some(ChainBreak {
                sequence: 3,
                kind: BreakKind::Missing
            })
        );
    }

    #[test]
    fn an_edited_column_or_event_breaks_the_chain_at_that_link() {
        let mut links = chain_of(3);
        let head = head_of(&links);
        links[1].columns.resource_type = "invoices".to_owned();
        let report = verify_links("clients", links, head);
        assert_eq!(
            report.first_break,
            Some(ChainBreak {
                sequence: 2,
                kind: BreakKind::ColumnsAltered
            })
        );

        let mut links = chain_of(3);
        let head = head_of(&links);
        links[2].hash[0] ^= 1;
        let report = verify_links("clients", links, head);
        assert_eq!(
            report.first_break,
            Some(ChainBreak {
                sequence: 3,
                kind: BreakKind::HashMismatch
            })
        );
    }

    #[test]
    fn archived_links_keep_the_chain_whole_but_a_gap_after_them_is_missing() {
        let links = chain_of(4);
        let head = head_of(&links);
        let mut verifier = ChainVerifier::new("clients");
        assert!(verifier.push_archived(1, links[0].hash.clone()));
        assert!(verifier.push_archived(2, links[1].hash.clone()));
        for link in links[2..].iter().cloned() {
            assert!(verifier.push(link));
        }
        let report = verifier.finish(head.clone());
        assert!(report.is_intact(), "{report:?}");
        assert_eq!(report.verified_links, 4);

        let mut verifier = ChainVerifier::new("clients");
        assert!(verifier.push_archived(1, links[0].hash.clone()));
        assert!(!verifier.push(links[2].clone()));
        let report = verifier.finish(head);
        assert_eq!(
            report.first_break,
            Some(ChainBreak {
                sequence: 2,
                kind: BreakKind::Missing
            })
        );
        assert_eq!(report.broken_event_id, None);
    }

    #[test]
    fn an_edited_link_reports_the_event_id_of_its_row() {
        let mut links = chain_of(3);
        let head = head_of(&links);
        links[1].columns.resource_type = "invoices".to_owned();
        let edited = links[1].columns.event_id;
        let report = verify_links("clients", links, head);
        assert_eq!(report.broken_event_id, Some(edited));
    }
}
