//! Compiles every `.proto` under `proto/` with protox (pure Rust, so a fresh
//! machine needs no `protoc`) and writes the descriptor set for reflection.
//!
//! Secret fields are marked `[debug_redact = true]` in the contracts. prost
//! ignores that option and would derive a `Debug` that prints them, so this
//! script reads the option from the descriptors itself: messages with a
//! redacted field get no derived `Debug` (`skip_debug`), and
//! `fitflow_redacted_debug.rs` in `OUT_DIR` implements `Debug` for them,
//! printing `[REDACTED]` for the secret fields and the usual output for the
//! others. `src/lib.rs` includes it.

use std::fmt::Write as _;
use std::path::PathBuf;

use heck::{ToSnakeCase as _, ToUpperCamelCase as _};
use prost_reflect::{
    DescriptorPool, FieldDescriptor, Kind, MessageDescriptor, OneofDescriptor, Value,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not with env!(): checkouts that share a target
    // directory share this compiled build script, but each runs it for itself.
    let proto_root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = proto_files(&proto_root)?;
    println!("cargo:rerun-if-changed=../../proto");
    // Cargo gives this crate the same identity in every checkout of the repo,
    // so with a shared target directory the file watch above can be satisfied
    // by another checkout's run. deploy/dev/{up,test} export a digest of the
    // contracts' content, which reruns this script whenever it differs.
    println!("cargo:rerun-if-env-changed=FITFLOW_CONTRACTS_DIGEST");

    let mut compiler = protox::Compiler::new([&proto_root])?;
    compiler
        .include_imports(true)
        .include_source_info(true)
        .open_files(&files)?;
    let descriptor_set = compiler.file_descriptor_set();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("fitflow_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptor_set),
    )?;

    // The option survives only in the reflection pool: prost-types'
    // `FieldOptions` predates `debug_redact` and drops it.
    let pool = compiler.descriptor_pool();
    let redacted = messages_with_redacted_fields(&pool)?;
    std::fs::write(
        out_dir.join("fitflow_redacted_debug.rs"),
        redacted_debug_impls(&redacted),
    )?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Ordered maps encode deterministically, which request hashes
        // (AIP-155 idempotency) rely on.
        .btree_map(".")
        .skip_debug(
            redacted
                .iter()
                .map(|message| format!(".{}", message.full_name())),
        )
        .compile_fds(descriptor_set)?;
    Ok(())
}

fn proto_files(dir: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            found.extend(proto_files(&path)?);
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

fn is_redacted(field: &FieldDescriptor) -> bool {
    field
        .options()
        .get_field_by_name("debug_redact")
        .is_some_and(|value| matches!(*value, Value::Bool(true)))
}

/// Our own FitFlow messages that hold at least one redacted field.
fn messages_with_redacted_fields(pool: &DescriptorPool) -> Result<Vec<MessageDescriptor>, String> {
    let mut found = Vec::new();
    for message in pool.all_messages() {
        if !message.package_name().starts_with("fitflow.")
            || !message.fields().any(|f| is_redacted(&f))
        {
            continue;
        }
        // `skip_debug` also removes the derived Debug of every type nested in
        // the message; rather than generate those too, keep secrets in flat
        // messages.
        // Map fields' entry types are nested messages too, but prost makes
        // them plain maps, not types with a Debug of their own.
        if message.child_messages().any(|child| !child.is_map_entry())
            || message.child_enums().next().is_some()
        {
            return Err(format!(
                "{} has a [debug_redact = true] field and nested types; move the nested types out of it",
                message.full_name()
            ));
        }
        found.push(message);
    }
    Ok(found)
}

/// The Rust path of a generated type, from the crate root: the package's
/// modules (as `src/lib.rs` nests them), the enclosing messages' modules,
/// then the type's own name.
fn rust_path(package: &str, parents: &[String], name: &str) -> String {
    let mut path = String::from("crate");
    for segment in package.split('.') {
        path.push_str("::");
        path.push_str(&rust_ident(segment));
    }
    for parent in parents {
        path.push_str("::");
        path.push_str(&rust_ident(&parent.to_snake_case()));
    }
    path.push_str("::");
    path.push_str(&name.to_upper_camel_case());
    path
}

fn message_path(message: &MessageDescriptor) -> String {
    rust_path(
        message.package_name(),
        &enclosing(message.parent_message()),
        message.name(),
    )
}

fn enclosing(mut parent: Option<MessageDescriptor>) -> Vec<String> {
    let mut names = Vec::new();
    while let Some(message) = parent {
        names.push(message.name().to_owned());
        parent = message.parent_message();
    }
    names.reverse();
    names
}

/// Escapes Rust keywords the way prost does (`type` becomes `r#type`).
fn rust_ident(name: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern",
        "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
        "pub", "ref", "return", "static", "struct", "trait", "true", "type", "unsafe", "use",
        "where", "while", "abstract", "become", "box", "do", "final", "gen", "macro", "override",
        "priv", "try", "typeof", "unsized", "virtual", "yield",
    ];
    if KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else {
        name.to_owned()
    }
}

/// How to print one field's value given as `access` (an expression of type
/// `&T`): redacted, as an enum name, or with its own `Debug`.
fn debug_value(field: &FieldDescriptor, access: &str) -> String {
    if is_redacted(field) {
        return "&crate::redact::Redacted".to_owned();
    }
    let Kind::Enum(enumeration) = field.kind() else {
        return access.to_owned();
    };
    if field.is_map() {
        return access.to_owned();
    }
    // prost stores enums as i32; its derived Debug prints the variant name,
    // and so do these wrappers.
    let enum_path = rust_path(
        enumeration.package_name(),
        &enclosing(enumeration.parent_message()),
        enumeration.name(),
    );
    if field.is_list() {
        format!("&crate::redact::EnumList::<{enum_path}>::new({access})")
    } else if field.supports_presence() && field.containing_oneof().is_none_or(|o| o.is_synthetic())
    {
        format!(
            "&::core::option::Option::as_ref({access}).map(crate::redact::EnumField::<{enum_path}>::new)"
        )
    } else {
        format!("&crate::redact::EnumField::<{enum_path}>::new({access})")
    }
}

fn real_oneof(field: &FieldDescriptor) -> Option<OneofDescriptor> {
    field
        .containing_oneof()
        .filter(|oneof| !oneof.is_synthetic())
}

fn redacted_debug_impls(messages: &[MessageDescriptor]) -> String {
    let mut code = String::from(
        "// @generated by fitflow-proto's build.rs: Debug for messages with \
         [debug_redact = true] fields.\n\n",
    );
    for message in messages {
        let path = message_path(message);
        let mut body = format!("f.debug_struct({:?})", message.name());
        for field in message.fields().filter(|field| real_oneof(field).is_none()) {
            let ident = rust_ident(&field.name().to_snake_case());
            let value = debug_value(&field, &format!("&self.{ident}"));
            let _ = write!(body, "\n            .field({:?}, {value})", field.name());
        }
        for oneof in message.oneofs().filter(|oneof| !oneof.is_synthetic()) {
            let ident = rust_ident(&oneof.name().to_snake_case());
            let _ = write!(
                body,
                "\n            .field({:?}, &self.{ident})",
                oneof.name()
            );
        }
        let _ = write!(
            code,
            "impl ::core::fmt::Debug for {path} {{\n    \
             fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {{\n        \
             {body}\n            .finish()\n    }}\n}}\n\n"
        );
        for oneof in message.oneofs().filter(|oneof| !oneof.is_synthetic()) {
            code.push_str(&oneof_debug_impl(message, &oneof));
        }
    }
    code
}

/// prost puts a oneof's enum in the message's module, and `skip_debug` on the
/// message removes its derived Debug too.
fn oneof_debug_impl(message: &MessageDescriptor, oneof: &OneofDescriptor) -> String {
    let mut parents = enclosing(message.parent_message());
    parents.push(message.name().to_owned());
    let path = rust_path(message.package_name(), &parents, oneof.name());
    let mut arms = String::new();
    for field in oneof.fields() {
        let variant = field.name().to_upper_camel_case();
        let binding = if is_redacted(&field) { "_" } else { "value" };
        let value = debug_value(&field, "value");
        let _ = write!(
            arms,
            "\n            Self::{variant}({binding}) => f.debug_tuple({variant:?}).field({value}).finish(),"
        );
    }
    format!(
        "impl ::core::fmt::Debug for {path} {{\n    \
         fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {{\n        \
         match self {{{arms}\n        }}\n    }}\n}}\n\n"
    )
}
