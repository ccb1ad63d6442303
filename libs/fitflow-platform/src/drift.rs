//! Checks that every copy of the table of services agrees with it.
//!
//! `deploy/services.tsv` is the single source of service names and ports. Some
//! files cannot read it at run time and so repeat part of it: the Kubernetes
//! manifests (per-service values and the endpoints ConfigMap), the Dockerfile's
//! `EXPOSE` line and the OpenBao policies. Others must not repeat it at all:
//! the dev scripts and the shared Kubernetes component read or receive it.
//! [`check`] compares them all with the table and lists every disagreement;
//! `tests/drift.rs` runs it on the checkout.
//!
//! The functions here are pure: they take the table and file contents keyed by
//! their path relative to the repository root, so a test can alter either. The
//! files are ours and simple, so they are read as text, not parsed as YAML/HCL.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::table::ServiceSpec;

/// The Dockerfile, whose `EXPOSE` line lists every service port.
pub const DOCKERFILE: &str = "deploy/docker/Dockerfile";
/// The Kubernetes base: deployed services and the endpoints ConfigMap.
pub const K8S_BASE: &str = "deploy/k8s/base/kustomization.yaml";
/// One directory per service, each holding the component's values.
pub const K8S_SERVICES_DIR: &str = "deploy/k8s/services/";
/// The shared Deployment + Service component, which must stay generic.
pub const K8S_COMPONENT_DIR: &str = "deploy/k8s/components/";
/// The one OpenBao policy template.
pub const POLICY_TEMPLATE: &str = "deploy/openbao/policy.hcl.tmpl";
/// Additions to one service's policy, `<service>.extra.hcl`.
pub const POLICY_EXTRAS_DIR: &str = "deploy/openbao/policies/";
/// The OpenBao set-up script, which renders the template per service.
pub const OPENBAO_SETUP: &str = "deploy/openbao/setup.sh";
/// The dev scripts, which read the table instead of listing services.
pub const DEV_SCRIPTS_DIR: &str = "deploy/dev/";
/// The placeholder for the service name in [`POLICY_TEMPLATE`].
pub const POLICY_PLACEHOLDER: &str = "{{service}}";
/// The transit key whose public keys every service reads to verify tokens.
const TOKEN_KEY: &str = "fitflow-identity-jwt";
/// The only service that may sign with [`TOKEN_KEY`].
const TOKEN_SIGNER: &str = "identity";

/// One place where a file disagrees with the table of services.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Drift {
    /// The file, relative to the repository root.
    pub file: String,
    /// The service the disagreement is about, when it is about one.
    pub service: Option<String>,
    /// What disagrees, and with what.
    pub problem: String,
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.service {
            Some(service) => write!(f, "{} [{service}]: {}", self.file, self.problem),
            None => write!(f, "{}: {}", self.file, self.problem),
        }
    }
}

fn drift(file: &str, service: Option<&str>, problem: String) -> Drift {
    Drift {
        file: file.to_owned(),
        service: service.map(str::to_owned),
        problem,
    }
}

/// Every disagreement between `table` and `files` (contents keyed by path
/// relative to the repository root; the deploy/ tree, at least). Empty when
/// everything agrees.
pub fn check(table: &[ServiceSpec], files: &BTreeMap<String, String>) -> Vec<Drift> {
    let mut drifts = Vec::new();
    let mut required = |path: &str| -> Option<&String> {
        let contents = files.get(path);
        if contents.is_none() {
            drifts.push(drift(path, None, "missing".to_owned()));
        }
        contents
    };
    let dockerfile = required(DOCKERFILE).cloned();
    let base = required(K8S_BASE).cloned();
    let template = required(POLICY_TEMPLATE).cloned();
    required(OPENBAO_SETUP);

    if let Some(text) = dockerfile {
        drifts.extend(check_dockerfile(table, DOCKERFILE, &text));
    }
    if let Some(text) = base {
        drifts.extend(check_k8s_base(table, K8S_BASE, &text));
    }
    drifts.extend(check_k8s_services(table, files));

    let mut extras = BTreeMap::new();
    for (path, text) in files {
        let takes_the_table_as_input = path.starts_with(K8S_COMPONENT_DIR)
            || path.starts_with(DEV_SCRIPTS_DIR)
            || path == OPENBAO_SETUP;
        if takes_the_table_as_input {
            drifts.extend(check_generic(table, path, text));
        } else if let Some(name) = path.strip_prefix(POLICY_EXTRAS_DIR) {
            match name.strip_suffix(".extra.hcl") {
                Some(service) if table.iter().any(|spec| spec.name == service) => {
                    extras.insert(service.to_owned(), text.as_str());
                }
                _ => drifts.push(drift(
                    path,
                    None,
                    "only <service>.extra.hcl for a service of the table belongs here; \
                     what every service gets is policy.hcl.tmpl"
                        .to_owned(),
                )),
            }
        }
    }
    if let Some(text) = files.get(OPENBAO_SETUP) {
        for needed in [POLICY_PLACEHOLDER, ".extra.hcl", "services.tsv"] {
            if !text.contains(needed) {
                drifts.push(drift(
                    OPENBAO_SETUP,
                    None,
                    format!("no longer mentions {needed:?}: does it still render the template per row of the table?"),
                ));
            }
        }
    }
    if let Some(text) = template {
        drifts.extend(check_policies(table, &text, &extras));
    }
    drifts.sort();
    drifts
}

/// The dev stack's start script, which exports the process environment.
pub const DEV_UP: &str = "deploy/dev/up";

/// When any of `senders` (the registry's services that send mail) is
/// deployed, the Kubernetes base's shared ConfigMap names an SMTP server
/// (`FITFLOW_SMTP_URL=smtp://…` or `smtps://…`) and the dev stack exports
/// one: those services do not start without it.
pub fn check_mail(senders: &[&str], files: &BTreeMap<String, String>) -> Vec<Drift> {
    if senders.is_empty() {
        return Vec::new();
    }
    let who = senders.join(", ");
    let mut drifts = Vec::new();
    let base_names_a_server = files.get(K8S_BASE).is_some_and(|text| {
        code_lines(text).any(|line| {
            let item = line.trim().trim_start_matches("- ").trim();
            item.strip_prefix("FITFLOW_SMTP_URL=")
                .is_some_and(|url| url.starts_with("smtp://") || url.starts_with("smtps://"))
        })
    });
    if !base_names_a_server {
        drifts.push(drift(
            K8S_BASE,
            None,
            format!("no FITFLOW_SMTP_URL=smtp://… in the shared ConfigMap, but {who} send mail"),
        ));
    }
    let dev_exports_one = files.get(DEV_UP).is_some_and(|text| {
        code_lines(text).any(|line| line.trim().starts_with("export FITFLOW_SMTP_URL="))
    });
    if !dev_exports_one {
        drifts.push(drift(
            DEV_UP,
            None,
            format!("does not export FITFLOW_SMTP_URL, but {who} send mail"),
        ));
    }
    drifts
}

/// The ports of the Dockerfile's `EXPOSE` lines (`50051`, `50051/tcp` or a
/// range `50051-50057`) must be exactly the table's.
pub fn check_dockerfile(table: &[ServiceSpec], file: &str, text: &str) -> Vec<Drift> {
    let mut exposed = BTreeSet::new();
    let mut found_expose = false;
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("EXPOSE ") else {
            continue;
        };
        found_expose = true;
        for word in rest.split_whitespace() {
            let word = word.split('/').next().unwrap_or(word);
            let range = match word.split_once('-') {
                Some((low, high)) => low.parse::<u16>().ok().zip(high.parse::<u16>().ok()),
                None => word.parse::<u16>().ok().map(|port| (port, port)),
            };
            match range {
                Some((low, high)) => exposed.extend(low..=high),
                None => return vec![drift(file, None, format!("EXPOSE {word:?} is not a port"))],
            }
        }
    }
    if !found_expose {
        return vec![drift(file, None, "has no EXPOSE line".to_owned())];
    }
    let mut drifts = Vec::new();
    for spec in table {
        if !exposed.remove(&spec.port) {
            drifts.push(drift(
                file,
                Some(&spec.name),
                format!("EXPOSE lacks port {}", spec.port),
            ));
        }
    }
    for port in exposed {
        drifts.push(drift(
            file,
            None,
            format!("EXPOSE has port {port}, which no service of the table has"),
        ));
    }
    drifts
}

/// The base's ConfigMap has `FITFLOW_<S>_ENDPOINT=https://<s>:<port>` for
/// every row and no other service; it deploys only services of the table;
/// no other line of it holds a service port.
pub fn check_k8s_base(table: &[ServiceSpec], file: &str, text: &str) -> Vec<Drift> {
    let mut drifts = Vec::new();
    let mut endpoints: BTreeMap<String, String> = BTreeMap::new();
    for line in code_lines(text) {
        let item = line.trim().trim_start_matches("- ").trim();
        if let Some((var, value)) = item.split_once('=')
            && let Some(upper) = var
                .strip_prefix("FITFLOW_")
                .and_then(|var| var.strip_suffix("_ENDPOINT"))
        {
            endpoints.insert(upper.to_owned(), value.trim().to_owned());
            continue;
        }
        if let Some(service) = item.strip_prefix("../services/") {
            let service = service.trim_end_matches('/');
            if !table.iter().any(|spec| spec.name == service) {
                drifts.push(drift(
                    file,
                    Some(service),
                    "deploys a service that is not in the table".to_owned(),
                ));
            }
        }
        drifts.extend(ports_in_line(table, file, line));
    }
    for spec in table {
        let expected = format!("https://{}:{}", spec.name, spec.port);
        match endpoints.remove(&env_name(&spec.name)) {
            Some(value) if value == expected => {}
            Some(value) => drifts.push(drift(
                file,
                Some(&spec.name),
                format!(
                    "FITFLOW_{}_ENDPOINT is {value}, the table says {expected}",
                    env_name(&spec.name)
                ),
            )),
            None => drifts.push(drift(
                file,
                Some(&spec.name),
                format!("no FITFLOW_{}_ENDPOINT={expected}", env_name(&spec.name)),
            )),
        }
    }
    for upper in endpoints.keys() {
        drifts.push(drift(
            file,
            None,
            format!("FITFLOW_{upper}_ENDPOINT names no service of the table"),
        ));
    }
    drifts
}

/// Every row has `deploy/k8s/services/<name>/kustomization.yaml`, whose values
/// are `name=<name>`, `env=<NAME>` and `port=<port>`; there is no directory
/// for a service the table does not have.
pub fn check_k8s_services(table: &[ServiceSpec], files: &BTreeMap<String, String>) -> Vec<Drift> {
    let mut drifts = Vec::new();
    let mut seen = BTreeSet::new();
    for (path, text) in files {
        let Some(rest) = path.strip_prefix(K8S_SERVICES_DIR) else {
            continue;
        };
        let Some((directory, "kustomization.yaml")) = rest.split_once('/') else {
            drifts.push(drift(
                path,
                None,
                "a service directory holds only kustomization.yaml".to_owned(),
            ));
            continue;
        };
        seen.insert(directory.to_owned());
        let Some(spec) = table.iter().find(|spec| spec.name == directory) else {
            drifts.push(drift(
                path,
                Some(directory),
                "is for a service that is not in the table".to_owned(),
            ));
            continue;
        };
        drifts.extend(check_k8s_service_values(spec, path, text));
    }
    for spec in table {
        if !seen.contains(&spec.name) {
            drifts.push(drift(
                &format!("{K8S_SERVICES_DIR}{}/kustomization.yaml", spec.name),
                Some(&spec.name),
                "missing: every row of the table has its directory".to_owned(),
            ));
        }
    }
    drifts
}

/// One service's values for the component: `name=`, `env=` and `port=`.
fn check_k8s_service_values(spec: &ServiceSpec, file: &str, text: &str) -> Vec<Drift> {
    let mut values: BTreeMap<&str, &str> = BTreeMap::new();
    for line in code_lines(text) {
        for word in line.split(|c: char| c.is_whitespace() || "[],\"'".contains(c)) {
            if let Some((key, value)) = word.split_once('=')
                && ["name", "env", "port"].contains(&key)
            {
                values.insert(key, value);
            }
        }
    }
    let expected = [
        ("name", spec.name.clone()),
        ("env", env_name(&spec.name)),
        ("port", spec.port.to_string()),
    ];
    expected
        .into_iter()
        .filter(|(key, value)| values.get(key) != Some(&value.as_str()))
        .map(|(key, value)| {
            let found = values.get(key).copied().unwrap_or("nothing");
            drift(
                file,
                Some(&spec.name),
                format!("{key} is {found}, the table says {value}"),
            )
        })
        .collect()
}

/// Where the per-person keys live in OpenBao (key/value v1).
const SUBJECT_KEYS_PREFIX: &str = "fitflow-subject-keys/";

/// The policy template renders, for each row, a policy that reaches only that
/// service's own transit key and PKI role, reads the token key's public keys,
/// and signs with it only for identity.
pub fn check_policies(
    table: &[ServiceSpec],
    template: &str,
    extras: &BTreeMap<String, &str>,
) -> Vec<Drift> {
    let mut drifts = check_generic(table, POLICY_TEMPLATE, template);
    let placeholders: BTreeSet<&str> = template
        .match_indices("{{")
        .filter_map(|(start, _)| {
            let end = template[start..].find("}}")?;
            Some(&template[start..start + end + 2])
        })
        .collect();
    if placeholders != BTreeSet::from([POLICY_PLACEHOLDER]) {
        drifts.push(drift(
            POLICY_TEMPLATE,
            None,
            format!("placeholders are {placeholders:?}; setup.sh fills only {POLICY_PLACEHOLDER}"),
        ));
    }
    for spec in table {
        let name = spec.name.as_str();
        let extra = extras.get(name).copied();
        let file = match extra {
            Some(_) => format!("{POLICY_TEMPLATE} + {POLICY_EXTRAS_DIR}{name}.extra.hcl"),
            None => POLICY_TEMPLATE.to_owned(),
        };
        let rules = policy_rules(&render_policy(template, name, extra));
        let grants = |path: &str, capability: &str| {
            rules.iter().any(|(rule, capabilities)| {
                rule == path && capabilities.iter().any(|c| c == capability)
            })
        };
        let own_key = format!("transit/encrypt/fitflow-{name}");
        let own_role = format!("pki/issue/{name}");
        let token_key = format!("transit/keys/{TOKEN_KEY}");
        for (path, capability) in [
            (own_key.as_str(), "update"),
            (own_role.as_str(), "update"),
            (token_key.as_str(), "read"),
        ] {
            if !grants(path, capability) {
                drifts.push(drift(
                    &file,
                    Some(name),
                    format!("the rendered policy does not grant {capability} on {path}"),
                ));
            }
        }
        for (path, capabilities) in &rules {
            // A client's own key seals their data in every service that
            // keeps it (DESIGN.md §4); only its owner, clients, may create or
            // destroy one, so another service may read them and nothing more.
            let reads_subject_keys = path.starts_with(SUBJECT_KEYS_PREFIX)
                && capabilities.iter().all(|capability| capability == "read");
            if reads_subject_keys {
                continue;
            }
            let signs = path.starts_with(&format!("transit/sign/{TOKEN_KEY}"));
            if signs && name != TOKEN_SIGNER {
                drifts.push(drift(
                    &file,
                    Some(name),
                    format!("only {TOKEN_SIGNER} signs tokens, yet it grants {path}"),
                ));
            }
            let without_token_key = path.replace(TOKEN_KEY, "");
            for other in table.iter().filter(|other| other.name != name) {
                if words(&without_token_key).any(|word| word == other.name) {
                    drifts.push(drift(
                        &file,
                        Some(name),
                        format!("grants {path}, which belongs to {}", other.name),
                    ));
                }
            }
        }
    }
    drifts
}

/// The policy `deploy/openbao/setup.sh` writes for `service`: the template with
/// every placeholder replaced, then the service's extra rules, if any.
pub fn render_policy(template: &str, service: &str, extra: Option<&str>) -> String {
    let mut policy = template.replace(POLICY_PLACEHOLDER, service);
    if let Some(extra) = extra {
        policy.push('\n');
        policy.push_str(extra);
    }
    policy
}

/// The `path "…" { capabilities = […] }` rules of a policy, comments skipped.
fn policy_rules(policy: &str) -> Vec<(String, Vec<String>)> {
    let code: String = code_lines(policy).collect::<Vec<_>>().join("\n");
    let mut rules = Vec::new();
    let mut rest = code.as_str();
    while let Some(start) = rest.find("path \"") {
        rest = &rest[start + "path \"".len()..];
        let Some(end) = rest.find('"') else { break };
        let path = rest[..end].to_owned();
        rest = &rest[end..];
        let block_end = rest.find('}').unwrap_or(rest.len());
        let block = &rest[..block_end];
        let capabilities = block
            .split_once('[')
            .and_then(|(_, list)| list.split_once(']'))
            .map(|(list, _)| {
                list.split(',')
                    .map(|item| item.trim().trim_matches('"').to_owned())
                    .filter(|item| !item.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        rules.push((path, capabilities));
        rest = &rest[block_end..];
    }
    rules
}

/// A file that must take names and ports from the table, not repeat them: no
/// service port appears in it, and no line names two services (a hand-kept list).
pub fn check_generic(table: &[ServiceSpec], file: &str, text: &str) -> Vec<Drift> {
    let mut drifts = Vec::new();
    for (index, line) in text.lines().enumerate() {
        drifts.extend(ports_in_line(table, file, line));
        let named: BTreeSet<&str> = words(line)
            .filter(|word| table.iter().any(|spec| spec.name == *word))
            .collect();
        if named.len() >= 2 {
            drifts.push(drift(
                file,
                None,
                format!(
                    "line {} names services {named:?}: read them from deploy/services.tsv",
                    index + 1
                ),
            ));
        }
    }
    drifts
}

/// A drift for every service port written as a number in `line`.
fn ports_in_line(table: &[ServiceSpec], file: &str, line: &str) -> Vec<Drift> {
    line.split(|c: char| !c.is_ascii_digit())
        .filter_map(|number| number.parse::<u32>().ok())
        .filter_map(|number| table.iter().find(|spec| u32::from(spec.port) == number))
        .map(|spec| {
            drift(
                file,
                Some(&spec.name),
                format!(
                    "hard-codes port {} (take it from deploy/services.tsv): {}",
                    spec.port,
                    line.trim()
                ),
            )
        })
        .collect()
}

/// The service name as it appears in environment variables: `IDENTITY`.
fn env_name(service: &str) -> String {
    service.to_uppercase().replace('-', "_")
}

/// Lines that are not `#` comments.
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
}

/// The words of `text`, split at everything but ASCII letters and digits.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::parse;

    fn table() -> Vec<ServiceSpec> {
        parse(
            "identity\t50051\tidentity\tspiffe://fitflow/identity\tgateway\n\
             audit\t50057\taudit\tspiffe://fitflow/audit\tidentity\n",
        )
        .expect("a valid table")
    }

    const TEMPLATE: &str = r#"# policy "fitflow-{{service}}"
path "transit/encrypt/fitflow-{{service}}" {
  capabilities = ["update"]
}
path "transit/keys/fitflow-identity-jwt" {
  capabilities = ["read"]
}
path "pki/issue/{{service}}" {
  capabilities = ["update"]
}
"#;
    const IDENTITY_EXTRA: &str = r#"path "transit/sign/fitflow-identity-jwt" {
  capabilities = ["update"]
}
"#;

    #[test]
    fn a_mail_sender_needs_an_smtp_server_in_the_k8s_base_and_the_dev_stack() {
        let mut files = BTreeMap::new();
        files.insert(
            K8S_BASE.to_owned(),
            "literals:\n  # - FITFLOW_SMTP_URL=smtp://commented-out:25\n".to_owned(),
        );
        files.insert(
            DEV_UP.to_owned(),
            "  # export FITFLOW_SMTP_URL=x\n".to_owned(),
        );
        assert!(check_mail(&[], &files).is_empty());
        let drifts = check_mail(&["identity", "tenancy"], &files);
        assert_eq!(drifts.len(), 2, "{drifts:?}");
        assert!(
            drifts
                .iter()
                .all(|drift| drift.problem.contains("identity, tenancy"))
        );
        files.insert(
            K8S_BASE.to_owned(),
            "literals:\n      - FITFLOW_SMTP_URL=smtp://smtp-relay:587\n".to_owned(),
        );
        files.insert(
            DEV_UP.to_owned(),
            "  export FITFLOW_SMTP_URL=\"smtp://127.0.0.1:$SMTP_PORT\"\n".to_owned(),
        );
        assert!(check_mail(&["tenancy"], &files).is_empty());
    }

    #[test]
    fn exposed_ports_are_read_from_lists_ranges_and_protocols() {
        assert!(check_dockerfile(&table(), DOCKERFILE, "EXPOSE 50051 50057/tcp\n").is_empty());
        let drifts = check_dockerfile(&table(), DOCKERFILE, "EXPOSE 50051-50057\n");
        assert_eq!(drifts.len(), 5, "50052..50056 belong to no service here");
        assert!(drifts.iter().all(|d| d.service.is_none()));
    }

    #[test]
    fn an_expose_line_missing_a_port_names_the_service() {
        let drifts = check_dockerfile(&table(), DOCKERFILE, "EXPOSE 50051\n");
        assert_eq!(
            drifts,
            [drift(
                DOCKERFILE,
                Some("audit"),
                "EXPOSE lacks port 50057".to_owned()
            )]
        );
    }

    #[test]
    fn an_endpoint_with_another_port_than_the_table_names_the_service() {
        let base = "literals:\n  - FITFLOW_IDENTITY_ENDPOINT=https://identity:50051\n  \
                    - FITFLOW_AUDIT_ENDPOINT=https://audit:50058\n";
        let drifts = check_k8s_base(&table(), K8S_BASE, base);
        assert_eq!(drifts.len(), 1, "{drifts:?}");
        assert_eq!(drifts[0].service.as_deref(), Some("audit"));
        assert!(drifts[0].problem.contains("https://audit:50057"));
    }

    #[test]
    fn an_endpoint_for_a_service_outside_the_table_is_drift() {
        let base = "- FITFLOW_IDENTITY_ENDPOINT=https://identity:50051\n\
                    - FITFLOW_AUDIT_ENDPOINT=https://audit:50057\n\
                    - FITFLOW_BILLING_ENDPOINT=https://billing:50056\n";
        let drifts = check_k8s_base(&table(), K8S_BASE, base);
        assert_eq!(drifts.len(), 1, "{drifts:?}");
        assert!(drifts[0].problem.contains("FITFLOW_BILLING_ENDPOINT"));
    }

    #[test]
    fn a_service_directory_with_the_wrong_port_or_env_names_file_and_service() {
        let files = BTreeMap::from([
            (
                "deploy/k8s/services/identity/kustomization.yaml".to_owned(),
                "literals: [name=identity, env=IDENTITY, port=50051]\n".to_owned(),
            ),
            (
                "deploy/k8s/services/audit/kustomization.yaml".to_owned(),
                "literals: [name=audit, env=AUDlT, port=50058]\n".to_owned(),
            ),
        ]);
        let drifts = check_k8s_services(&table(), &files);
        assert_eq!(drifts.len(), 2, "{drifts:?}");
        assert!(drifts.iter().all(|d| {
            d.file == "deploy/k8s/services/audit/kustomization.yaml"
                && d.service.as_deref() == Some("audit")
        }));
    }

    #[test]
    fn a_row_without_its_k8s_directory_is_drift() {
        let files = BTreeMap::from([(
            "deploy/k8s/services/identity/kustomization.yaml".to_owned(),
            "literals: [name=identity, env=IDENTITY, port=50051]\n".to_owned(),
        )]);
        let drifts = check_k8s_services(&table(), &files);
        assert_eq!(drifts.len(), 1, "{drifts:?}");
        assert_eq!(
            drifts[0].file,
            "deploy/k8s/services/audit/kustomization.yaml"
        );
    }

    #[test]
    fn the_template_gives_each_service_its_own_paths_and_the_token_key_to_read() {
        let extras = BTreeMap::from([("identity".to_owned(), IDENTITY_EXTRA)]);
        assert_eq!(check_policies(&table(), TEMPLATE, &extras), []);
        let audit = render_policy(TEMPLATE, "audit", None);
        assert!(audit.contains(r#"path "pki/issue/audit""#));
        assert!(!audit.contains("{{"));
    }

    #[test]
    fn signing_tokens_is_refused_to_every_service_but_identity() {
        let extras = BTreeMap::from([("audit".to_owned(), IDENTITY_EXTRA)]);
        let drifts = check_policies(&table(), TEMPLATE, &extras);
        assert_eq!(drifts.len(), 1, "{drifts:?}");
        assert_eq!(drifts[0].service.as_deref(), Some("audit"));
    }

    #[test]
    fn a_template_without_the_token_key_fails_for_every_service() {
        let without = TEMPLATE.replace(r#"["read"]"#, r#"["deny"]"#);
        let drifts = check_policies(&table(), &without, &BTreeMap::new());
        let services: BTreeSet<_> = drifts.iter().filter_map(|d| d.service.as_deref()).collect();
        assert_eq!(services, BTreeSet::from(["audit", "identity"]));
    }

    #[test]
    fn a_template_naming_another_service_leaks_its_paths() {
        let leaky =
            format!("{TEMPLATE}path \"pki/issue/audit\" {{\n  capabilities = [\"update\"]\n}}\n");
        let drifts = check_policies(&table(), &leaky, &BTreeMap::new());
        assert!(
            drifts
                .iter()
                .any(|d| d.service.as_deref() == Some("identity")
                    && d.problem.contains("belongs to audit"))
        );
    }

    #[test]
    fn a_script_with_a_service_port_or_a_list_of_services_is_drift() {
        let script = "ports=(50051)\nfor s in identity audit; do :; done\n# identity only\n";
        let drifts = check_generic(&table(), "deploy/dev/up", script);
        assert_eq!(drifts.len(), 2, "{drifts:?}");
        assert_eq!(drifts[0].service.as_deref(), Some("identity"));
        assert!(drifts[1].problem.contains("line 2"));
    }
}
