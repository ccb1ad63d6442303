//! Every copy of the table of services in this checkout agrees with
//! `deploy/services.tsv`; and an edit to the table alone is caught.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fitflow_platform::drift::{self, Drift};
use fitflow_platform::table::{self, SERVICES_TSV};

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every file under `deploy/`, keyed by its path relative to the repository root.
fn deploy_files() -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<String, String>) {
        let entries = std::fs::read_dir(dir)
            .unwrap_or_else(|error| panic!("read {}: {error}", dir.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(root, &path, files);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                let relative = path.strip_prefix(root).expect("under the root");
                let key = relative
                    .components()
                    .map(|part| part.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                files.insert(key, text);
            }
        }
    }
    let root = repository_root();
    let mut files = BTreeMap::new();
    walk(&root, &root.join("deploy"), &mut files);
    files
}

fn listed(drifts: &[Drift]) -> String {
    drifts.iter().map(|drift| format!("  {drift}\n")).collect()
}

#[test]
fn every_copy_of_the_table_in_deploy_agrees_with_it() {
    let drifts = drift::check(table::services_table(), &deploy_files());
    assert!(
        drifts.is_empty(),
        "these files disagree with deploy/services.tsv:\n{}",
        listed(&drifts)
    );
}

#[test]
fn a_port_changed_in_the_table_only_is_reported_in_each_file_that_copies_it() {
    let altered_text = SERVICES_TSV.replace("\t50057\t", "\t50058\t");
    assert_ne!(
        altered_text, SERVICES_TSV,
        "the table gives audit port 50057"
    );
    let altered = table::parse(&altered_text).expect("still a valid table");

    let drifts = drift::check(&altered, &deploy_files());

    let about_audit = |file: &str| {
        drifts
            .iter()
            .any(|drift| drift.file == file && drift.service.as_deref() == Some("audit"))
    };
    for file in [
        drift::DOCKERFILE,
        drift::K8S_BASE,
        "deploy/k8s/services/audit/kustomization.yaml",
    ] {
        assert!(
            about_audit(file),
            "expected a drift about audit in {file}, got:\n{}",
            listed(&drifts)
        );
    }
    assert!(
        drifts
            .iter()
            .all(|drift| drift.service.as_deref() == Some("audit")
                || drift.problem.contains("50057")),
        "only audit's port moved:\n{}",
        listed(&drifts)
    );
}

#[test]
fn a_per_service_policy_copy_beside_the_template_is_reported() {
    let mut files = deploy_files();
    let template = files[drift::POLICY_TEMPLATE].clone();
    files.insert(
        "deploy/openbao/policies/audit.hcl".to_owned(),
        drift::render_policy(&template, "audit", None),
    );

    let drifts = drift::check(table::services_table(), &files);

    assert!(
        drifts
            .iter()
            .any(|drift| drift.file == "deploy/openbao/policies/audit.hcl"),
        "{}",
        listed(&drifts)
    );
}

#[test]
fn another_service_may_read_client_keys_but_never_write_or_delete_them() {
    let mut files = deploy_files();
    files.insert(
        "deploy/openbao/policies/documentation.extra.hcl".to_owned(),
        "path \"fitflow-subject-keys/clients/*\" {\n  capabilities = [\"read\", \"delete\"]\n}\n"
            .to_owned(),
    );

    let drifts = drift::check(table::services_table(), &files);

    assert!(
        drifts.iter().any(|drift| {
            drift.service.as_deref() == Some("documentation")
                && drift.problem.contains("belongs to clients")
        }),
        "{}",
        listed(&drifts)
    );
    assert!(
        drift::check(table::services_table(), &deploy_files()).is_empty(),
        "the committed read-only grant is allowed"
    );
}
