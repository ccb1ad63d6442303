//! Which mTLS peers may call which RPCs.

use fitflow_auth::PeerIdentity;
use fitflow_error::ApiError;

/// Every FitFlow service's peer name.
pub const SERVICE_PEERS: &[&str] = &[
    "identity",
    "tenancy",
    "clients",
    "scheduling",
    "documentation",
    "billing",
    "audit",
];
/// Peers outside the service mesh: the BFF/gateway and operators.
pub const EDGE_PEERS: &[&str] = &["gateway", "operator"];

/// Paths any certificate from the FitFlow CA may call: health and reflection.
const OPEN_PREFIXES: &[&str] = &["/grpc.health.v1.Health/", "/grpc.reflection."];

/// A per-RPC allow-list of peers. Rules match by path prefix (a whole
/// service `/pkg.Service/` or one method `/pkg.Service/Method`); the longest
/// matching prefix wins; paths no rule matches get the default.
#[derive(Debug, Clone)]
pub struct PeerPolicy {
    default_peers: Vec<String>,
    rules: Vec<(String, Vec<String>)>,
}

impl PeerPolicy {
    /// A policy whose RPCs admit `default_peers` unless a rule says otherwise.
    pub fn new(default_peers: &[&str]) -> Self {
        Self {
            default_peers: to_owned(default_peers),
            rules: Vec::new(),
        }
    }

    /// Admits only `peers` to RPCs under `path_prefix`.
    pub fn allow(mut self, path_prefix: &str, peers: &[&str]) -> Self {
        self.rules.push((path_prefix.to_owned(), to_owned(peers)));
        self
    }

    /// Every peer some RPC admits (health and reflection aside), sorted.
    pub fn admitted_peers(&self) -> Vec<String> {
        let mut peers: Vec<String> = self
            .default_peers
            .iter()
            .chain(self.rules.iter().flat_map(|(_, peers)| peers))
            .cloned()
            .collect();
        peers.sort();
        peers.dedup();
        peers
    }

    /// Whether `peer` may call `path`; fails closed when the peer is unknown.
    pub fn check(&self, path: &str, peer: Option<&PeerIdentity>) -> Result<(), ApiError> {
        let Some(peer) = peer else {
            return Err(ApiError::unauthenticated(
                "PEER_UNIDENTIFIED",
                "the client certificate carries no FitFlow identity",
            ));
        };
        if OPEN_PREFIXES.iter().any(|prefix| path.starts_with(prefix)) {
            return Ok(());
        }
        let allowed = self
            .rules
            .iter()
            .filter(|(prefix, _)| path.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(&self.default_peers, |(_, peers)| peers);
        if allowed.contains(&peer.0) {
            Ok(())
        } else {
            Err(ApiError::permission_denied(
                "PEER_NOT_ALLOWED",
                format!("peer {} may not call this method", peer.0),
            ))
        }
    }
}

fn to_owned(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(name: &str) -> PeerIdentity {
        PeerIdentity(name.into())
    }

    fn audit_policy() -> PeerPolicy {
        PeerPolicy::new(EDGE_PEERS).allow("/fitflow.audit.v1.AuditIngestService/", &["identity"])
    }

    #[test]
    fn a_listed_peer_may_call_its_rpc() {
        let policy = audit_policy();
        assert!(
            policy
                .check(
                    "/fitflow.audit.v1.AuditIngestService/Ingest",
                    Some(&peer("identity"))
                )
                .is_ok()
        );
        assert!(
            policy
                .check(
                    "/fitflow.audit.v1.AuditService/ListEvents",
                    Some(&peer("operator"))
                )
                .is_ok()
        );
    }

    #[test]
    fn a_valid_peer_not_on_the_allow_list_is_refused() {
        let error = audit_policy()
            .check(
                "/fitflow.audit.v1.AuditIngestService/Ingest",
                Some(&peer("gateway")),
            )
            .unwrap_err();
        assert_eq!(error.reason, "PEER_NOT_ALLOWED");
    }

    #[test]
    fn the_longest_matching_rule_wins() {
        let policy = PeerPolicy::new(&["gateway"])
            .allow("/pkg.Svc/", &["billing"])
            .allow("/pkg.Svc/Special", &["clients"]);
        assert!(
            policy
                .check("/pkg.Svc/Special", Some(&peer("clients")))
                .is_ok()
        );
        assert!(
            policy
                .check("/pkg.Svc/Special", Some(&peer("billing")))
                .is_err()
        );
        assert!(
            policy
                .check("/pkg.Svc/Other", Some(&peer("billing")))
                .is_ok()
        );
    }

    #[test]
    fn health_is_open_to_any_identified_peer_but_never_to_an_anonymous_one() {
        let policy = audit_policy();
        assert!(
            policy
                .check("/grpc.health.v1.Health/Check", Some(&peer("billing")))
                .is_ok()
        );
        assert!(policy.check("/grpc.health.v1.Health/Check", None).is_err());
    }
}
