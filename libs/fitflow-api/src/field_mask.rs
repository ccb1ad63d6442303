//! `update_mask` on Update methods (AIP-134).
//!
//! A service lists, per resource, the field paths an Update may change (as
//! they appear in the resource message, e.g. `display_name`,
//! `address.postal_code`). [`fields_to_update`] turns a request's mask into the
//! set of those fields to write:
//!
//! - **empty mask**: the fields the request populated (gave a non-default
//!   value). Proto3 cannot tell an unset scalar from an empty one, so the
//!   service says which updatable fields it found populated; an empty mask
//!   can therefore never clear a field — callers name it in the mask for that.
//! - **`*`**: every updatable field (full replacement: fields left unset are
//!   cleared). `*` must be the only path.
//! - **paths**: exactly those; each must be an updatable field. An unknown,
//!   output-only or immutable path is a violation on `update_mask.paths[i]`
//!   rather than silently ignored, so a typo never looks like success.
//!
//! The result may be empty (an empty mask on a request that populated
//! nothing): the Update then changes nothing and returns the resource as is.

use std::collections::BTreeSet;

use fitflow_error::Violations;

/// The AIP-134 wildcard: replace every updatable field.
pub const WILDCARD: &str = "*";

/// The fields an Update writes; each is one of the service's updatable names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet(BTreeSet<&'static str>);

impl FieldSet {
    /// Whether `field` is to be written.
    pub fn contains(&self, field: &str) -> bool {
        self.0.contains(field)
    }

    /// Whether nothing is to be written.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The fields to write, in name order.
    pub fn iter(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().copied()
    }
}

/// Resolves `mask_paths` (the request's `update_mask.paths`) against the
/// resource's `updatable` fields; `populated` lists the updatable fields the
/// request gave a value, used only when the mask is empty. Records a
/// violation per bad path and returns the fields it could resolve.
pub fn fields_to_update(
    violations: &mut Violations,
    mask_paths: &[String],
    updatable: &[&'static str],
    populated: &[&'static str],
) -> FieldSet {
    debug_assert!(
        populated.iter().all(|field| updatable.contains(field)),
        "populated fields are updatable fields"
    );
    if mask_paths.is_empty() {
        return FieldSet(populated.iter().copied().collect());
    }
    if mask_paths.iter().any(|path| path == WILDCARD) {
        if mask_paths.len() > 1 {
            violations.add("update_mask", "`*` must be the only path");
        }
        return FieldSet(updatable.iter().copied().collect());
    }
    let mut fields = BTreeSet::new();
    for (index, path) in mask_paths.iter().enumerate() {
        match updatable.iter().find(|field| **field == path.as_str()) {
            Some(field) => {
                fields.insert(*field);
            }
            None => violations.add(
                format!("update_mask.paths[{index}]"),
                "is not a field this method can update",
            ),
        }
    }
    FieldSet(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPDATABLE: &[&str] = &["display_name", "notes", "address.postal_code"];

    fn paths(paths: &[&str]) -> Vec<String> {
        paths.iter().map(|path| (*path).to_owned()).collect()
    }

    fn resolve(mask: &[&str], populated: &[&'static str]) -> (Vec<&'static str>, Vec<String>) {
        let mut violations = Violations::new();
        let fields = fields_to_update(&mut violations, &paths(mask), UPDATABLE, populated);
        let bad = match violations.into_result() {
            Ok(()) => Vec::new(),
            Err(error) => error.violations.into_iter().map(|v| v.field).collect(),
        };
        (fields.iter().collect(), bad)
    }

    #[test]
    fn an_empty_mask_updates_the_fields_the_request_populated() {
        assert_eq!(resolve(&[], &["notes"]), (vec!["notes"], vec![]));
        assert_eq!(resolve(&[], &[]), (vec![], vec![]));
    }

    #[test]
    fn the_wildcard_replaces_every_updatable_field() {
        assert_eq!(
            resolve(&["*"], &["notes"]),
            (vec!["address.postal_code", "display_name", "notes"], vec![])
        );
    }

    #[test]
    fn the_wildcard_with_other_paths_is_refused() {
        let (_, bad) = resolve(&["*", "notes"], &[]);
        assert_eq!(bad, ["update_mask"]);
    }

    #[test]
    fn named_paths_update_exactly_those_fields_even_when_unpopulated() {
        assert_eq!(
            resolve(
                &["display_name", "address.postal_code", "display_name"],
                &[]
            ),
            (vec!["address.postal_code", "display_name"], vec![])
        );
    }

    #[test]
    fn an_unknown_or_not_updatable_path_is_a_violation_on_its_index() {
        let (fields, bad) = resolve(&["notes", "create_time", "Notes", "address"], &[]);
        assert_eq!(fields, ["notes"]);
        assert_eq!(
            bad,
            [
                "update_mask.paths[1]",
                "update_mask.paths[2]",
                "update_mask.paths[3]"
            ]
        );
    }

    #[test]
    fn a_field_set_answers_membership() {
        let mut violations = Violations::new();
        let fields = fields_to_update(&mut violations, &paths(&["notes"]), UPDATABLE, &[]);
        assert!(fields.contains("notes"));
        assert!(!fields.contains("display_name"));
        assert!(!fields.is_empty());
    }
}
