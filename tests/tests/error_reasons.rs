//! Every error reason the code sends is declared in the contracts.
//!
//! Callers act on `google.rpc.ErrorInfo.reason`, so a reason must be part of
//! the contract: each package declares its own in an `ErrorReason` enum, and
//! the reasons every service shares are declared once in
//! `fitflow.type.v1.ErrorReason` (value name = `ERROR_REASON_` + reason).
//! This test reads the Rust sources of `libs/` and `services/`, finds the
//! reason given to every `ApiError` constructor, and checks it against the
//! generated enums: shared libraries may send only shared reasons; a service
//! may send shared reasons and its own package's. It also checks that the
//! reasons the proto comments name are declared.

use std::path::{Path, PathBuf};

use fitflow_proto::{audit, billing, clients, documentation, identity, scheduling, tenancy, types};

/// The `ApiError` constructors that take a reason, and the argument (from 0)
/// that holds it.
const CONSTRUCTORS: &[(&str, usize)] = &[
    ("new", 1),
    ("unauthenticated", 0),
    ("permission_denied", 0),
    ("not_found", 0),
    ("unavailable", 0),
];

/// The crate that defines `ApiError`: its helpers forward their caller's
/// reason, and it builds some errors with `Self::…` or a struct literal.
const ERROR_CRATE: &str = "libs/fitflow-error/";

/// One reason found in the sources.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SentReason {
    /// 1-based line of the constructor call.
    line: usize,
    /// The reason literal, or the argument's text when it is not a literal.
    reason: Result<String, String>,
}

/// The reasons `source` gives to `ApiError` constructors. With
/// `in_error_crate`, `Self::` calls and `reason: "…"` fields count too, and a
/// non-literal reason (a helper forwarding its parameter) is not reported.
fn reasons_sent_in(source: &str, in_error_crate: bool) -> Vec<SentReason> {
    let mut found = Vec::new();
    let prefixes: &[&str] = if in_error_crate {
        &["ApiError::", "Self::"]
    } else {
        &["ApiError::"]
    };
    for prefix in prefixes {
        for &(constructor, reason_index) in CONSTRUCTORS {
            let call = format!("{prefix}{constructor}(");
            for (start, _) in source.match_indices(&call) {
                let args = call_arguments(&source[start + call.len()..]);
                let Some(argument) = args.get(reason_index) else {
                    continue;
                };
                let reason = match string_literal(argument) {
                    Some(literal) => Ok(literal),
                    None if in_error_crate => continue,
                    None => Err(argument.clone()),
                };
                found.push(SentReason {
                    line: line_of(source, start),
                    reason,
                });
            }
        }
    }
    if in_error_crate {
        for (start, _) in source.match_indices("reason: \"") {
            let rest = &source[start + "reason: ".len()..];
            if let Some(literal) = rest.split(',').next().and_then(string_literal) {
                found.push(SentReason {
                    line: line_of(source, start),
                    reason: Ok(literal),
                });
            }
        }
    }
    found.sort_by_key(|sent| sent.line);
    found
}

/// The top-level, comma-separated arguments of a call, given the text after
/// its opening parenthesis.
fn call_arguments(text: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    let mut chars = text.chars();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            current.push(c);
            match c {
                '\\' => current.extend(chars.next()),
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                current.push(c);
            }
            '(' | '[' | '{' => {
                depth += 1;
                current.push(c);
            }
            ')' | ']' | '}' if depth == 0 => break,
            ')' | ']' | '}' => {
                depth -= 1;
                current.push(c);
            }
            ',' if depth == 0 => args.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if !current.trim().is_empty() {
        args.push(current);
    }
    args.into_iter().map(|arg| arg.trim().to_owned()).collect()
}

fn string_literal(argument: &str) -> Option<String> {
    let inner = argument.trim().strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('"') && !inner.contains('\\')).then(|| inner.to_owned())
}

fn line_of(source: &str, offset: usize) -> usize {
    source[..offset].matches('\n').count() + 1
}

/// Whose `ErrorReason` enum, besides the shared one, a source file may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sender {
    /// A shared library (or the binary): shared reasons only.
    Shared,
    /// The identity service.
    Identity,
    /// The audit service.
    Audit,
    /// The tenancy service.
    Tenancy,
    /// The clients service.
    Clients,
    /// The scheduling service.
    Scheduling,
    /// The documentation service.
    Documentation,
    /// The billing service.
    Billing,
}

impl Sender {
    /// The sender owning `relative` (a path from the workspace root).
    fn of(relative: &Path) -> Result<Self, String> {
        let mut parts = relative.iter().map(|part| part.to_string_lossy());
        match (parts.next().as_deref(), parts.next().as_deref()) {
            (Some("libs"), _) | (Some("services"), Some("fitflow")) => Ok(Sender::Shared),
            (Some("services"), Some("identity")) => Ok(Sender::Identity),
            (Some("services"), Some("audit")) => Ok(Sender::Audit),
            (Some("services"), Some("tenancy")) => Ok(Sender::Tenancy),
            (Some("services"), Some("clients")) => Ok(Sender::Clients),
            (Some("services"), Some("scheduling")) => Ok(Sender::Scheduling),
            (Some("services"), Some("documentation")) => Ok(Sender::Documentation),
            (Some("services"), Some("billing")) => Ok(Sender::Billing),
            _ => Err(format!(
                "{}: a new service? map its directory to its package's ErrorReason in this test",
                relative.display()
            )),
        }
    }

    /// Whether `reason` is declared for this sender.
    fn declares(self, reason: &str) -> bool {
        let name = format!("ERROR_REASON_{reason}");
        let shared = types::ErrorReason::from_str_name(&name);
        let own = match self {
            Sender::Shared => None,
            Sender::Identity => {
                identity::ErrorReason::from_str_name(&name).map(|value| value as i32)
            }
            Sender::Audit => audit::ErrorReason::from_str_name(&name).map(|value| value as i32),
            Sender::Tenancy => tenancy::ErrorReason::from_str_name(&name).map(|value| value as i32),
            Sender::Clients => clients::ErrorReason::from_str_name(&name).map(|value| value as i32),
            Sender::Scheduling => {
                scheduling::ErrorReason::from_str_name(&name).map(|value| value as i32)
            }
            Sender::Documentation => {
                documentation::ErrorReason::from_str_name(&name).map(|value| value as i32)
            }
            Sender::Billing => billing::ErrorReason::from_str_name(&name).map(|value| value as i32),
        };
        // UNSPECIFIED is the enum's zero, never a reason.
        shared.is_some_and(|value| value != types::ErrorReason::Unspecified)
            || own.is_some_and(|value| value != 0)
    }
}

/// Every reason in `source` that `sender` may not send, as messages.
fn undeclared(relative: &Path, source: &str, sender: Sender) -> Vec<String> {
    let in_error_crate = relative.starts_with(ERROR_CRATE);
    reasons_sent_in(source, in_error_crate)
        .into_iter()
        .filter_map(|sent| match sent.reason {
            Ok(reason) if sender.declares(&reason) => None,
            Ok(reason) => Some(format!(
                "{}:{}: reason {reason} is not declared in fitflow.type.v1.ErrorReason{}",
                relative.display(),
                sent.line,
                match sender {
                    Sender::Shared => " (shared code sends shared reasons only)".to_owned(),
                    other => format!(" nor in the {other:?} package's ErrorReason"),
                }
            )),
            Err(argument) => Some(format!(
                "{}:{}: the reason `{argument}` is not a string literal; pass the literal so this test can check it",
                relative.display(),
                sent.line
            )),
        })
        .collect()
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn rust_sources(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_sources(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// `libs/*/src` and `services/*/src`: the code that builds errors for callers.
fn source_files() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut files = Vec::new();
    for top in ["libs", "services"] {
        for krate in std::fs::read_dir(root.join(top)).expect("read libs/ and services/") {
            rust_sources(
                &krate.expect("crate directory").path().join("src"),
                &mut files,
            );
        }
    }
    files.sort();
    files
}

#[test]
fn every_reason_the_code_sends_is_declared_in_the_protos() {
    let root = workspace_root();
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in source_files() {
        let relative = file.strip_prefix(&root).expect("under the root");
        let source = std::fs::read_to_string(&file).expect("read source");
        checked += reasons_sent_in(&source, relative.starts_with(ERROR_CRATE)).len();
        match Sender::of(relative) {
            Ok(sender) => problems.extend(undeclared(relative, &source, sender)),
            Err(problem) => problems.push(problem),
        }
    }
    // Guards the scan itself: if it stopped finding constructors, it would
    // pass while checking nothing.
    assert!(
        checked >= 30,
        "found only {checked} reasons; is the scan broken?"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn an_undeclared_reason_is_caught() {
    let source = r#"
        fn refuse() -> ApiError {
            ApiError::permission_denied("NOT_A_DECLARED_REASON", "no")
        }
        fn also(reason: &'static str) -> ApiError {
            ApiError::new(Code::NotFound, reason, format!("missing {}", 1))
        }
        fn fine() -> ApiError {
            ApiError::new(Code::AlreadyExists, "EMAIL_TAKEN", "taken, \"really\"")
        }
    "#;
    let problems = undeclared(
        Path::new("services/identity/src/x.rs"),
        source,
        Sender::Identity,
    );
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems[0].contains(":3: reason NOT_A_DECLARED_REASON"),
        "{}",
        problems[0]
    );
    assert!(
        problems[1].contains(":6: the reason `reason`"),
        "{}",
        problems[1]
    );
}

#[test]
fn a_service_reason_sent_from_shared_code_is_caught() {
    let source = r#"ApiError::unauthenticated("INVALID_CREDENTIALS", "no")"#;
    assert_eq!(
        undeclared(
            Path::new("libs/fitflow-auth/src/x.rs"),
            source,
            Sender::Shared
        )
        .len(),
        1
    );
    assert!(
        undeclared(
            Path::new("services/identity/src/x.rs"),
            source,
            Sender::Identity
        )
        .is_empty()
    );
}

#[test]
fn the_shared_and_service_reasons_never_share_a_name() {
    let shared: Vec<_> = (1..1000)
        .filter_map(|n| types::ErrorReason::try_from(n).ok())
        .map(|value| value.as_str_name())
        .collect();
    let services = (1..1000)
        .filter_map(|n| identity::ErrorReason::try_from(n).ok())
        .map(|value| value.as_str_name())
        .chain(
            (1..1000)
                .filter_map(|n| audit::ErrorReason::try_from(n).ok())
                .map(|value| value.as_str_name()),
        )
        .chain(
            (1..1000)
                .filter_map(|n| tenancy::ErrorReason::try_from(n).ok())
                .map(|value| value.as_str_name()),
        )
        .chain(
            (1..1000)
                .filter_map(|n| clients::ErrorReason::try_from(n).ok())
                .map(|value| value.as_str_name()),
        )
        .chain(
            (1..1000)
                .filter_map(|n| scheduling::ErrorReason::try_from(n).ok())
                .map(|value| value.as_str_name()),
        )
        .chain(
            (1..1000)
                .filter_map(|n| documentation::ErrorReason::try_from(n).ok())
                .map(|value| value.as_str_name()),
        )
        .chain(
            (1..1000)
                .filter_map(|n| billing::ErrorReason::try_from(n).ok())
                .map(|value| value.as_str_name()),
        );
    for name in services {
        assert!(!shared.contains(&name), "{name} is declared twice");
    }
}

/// The reasons a proto file's comments name, as in "(reason EMAIL_TAKEN)" or
/// "reason TOKEN_REQUIRED, TOKEN_INVALID or TOKEN_EXPIRED", by line.
fn reasons_named_in_comments(proto: &str) -> Vec<(usize, String)> {
    let mut named = Vec::new();
    let words: Vec<(usize, &str)> = proto
        .lines()
        .enumerate()
        .filter_map(|(index, line)| Some((index + 1, line.trim().strip_prefix("//")?)))
        .flat_map(|(line, text)| text.split_whitespace().map(move |word| (line, word)))
        .collect();
    let mut after_reason = false;
    for (line, word) in words {
        let bare = word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_');
        let is_reason_name = bare.len() > 2
            && bare
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            && bare.contains('_');
        if word == "reason" || word == "(reason" {
            after_reason = true;
        } else if after_reason && is_reason_name {
            named.push((line, bare.to_owned()));
            // "A, B or C" names several; a closing parenthesis or colon ends the list.
            after_reason = !word.contains(')') && !word.ends_with(':') && !word.ends_with(';');
        } else if after_reason && !(word == "or" || word == "and") {
            after_reason = false;
        }
    }
    named
}

#[test]
fn every_reason_the_proto_comments_name_is_declared() {
    let root = workspace_root();
    let mut problems = Vec::new();
    let mut checked = 0;
    for (relative, sender) in [
        ("proto/fitflow/identity/v1/identity.proto", Sender::Identity),
        ("proto/fitflow/audit/v1/audit.proto", Sender::Audit),
        ("proto/fitflow/tenancy/v1/tenancy.proto", Sender::Tenancy),
        ("proto/fitflow/clients/v1/clients.proto", Sender::Clients),
        (
            "proto/fitflow/scheduling/v1/scheduling.proto",
            Sender::Scheduling,
        ),
        (
            "proto/fitflow/documentation/v1/documentation.proto",
            Sender::Documentation,
        ),
        ("proto/fitflow/billing/v1/billing.proto", Sender::Billing),
    ] {
        let proto = std::fs::read_to_string(root.join(relative)).expect("read proto");
        for (line, reason) in reasons_named_in_comments(&proto) {
            checked += 1;
            if !sender.declares(&reason) {
                problems.push(format!(
                    "{relative}:{line}: the comment names reason {reason}, which is not declared"
                ));
            }
        }
    }
    assert!(
        checked >= 20,
        "found only {checked} reasons in the comments"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn reasons_are_read_from_comments_including_lists() {
    let proto = "// Errors: UNAUTHENTICATED (reason TOKEN_REQUIRED, TOKEN_INVALID or\n\
                 // TOKEN_EXPIRED), PERMISSION_DENIED (reason ROLE_REQUIRED: an operator).\n\
                 // the reason INVALID_ARGUMENT always carries details";
    let named: Vec<_> = reasons_named_in_comments(proto)
        .into_iter()
        .map(|(_, reason)| reason)
        .collect();
    assert_eq!(
        named,
        [
            "TOKEN_REQUIRED",
            "TOKEN_INVALID",
            "TOKEN_EXPIRED",
            "ROLE_REQUIRED",
            "INVALID_ARGUMENT"
        ]
    );
}
