//! The table of services, `deploy/services.tsv`, compiled into the binary.

use std::sync::OnceLock;

/// The table's text, as committed.
pub const SERVICES_TSV: &str = include_str!("../../../deploy/services.tsv");

/// One row of the table of services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Service name: peer name, TLS server name, audit source.
    pub name: String,
    /// Fixed default gRPC port.
    pub port: u16,
    /// The PostgreSQL schema it owns.
    pub schema: String,
    /// The URI SAN of its certificate.
    pub spiffe_id: String,
    /// Every peer that may call at least one of its RPCs.
    pub callers: Vec<String>,
}

/// Why a table of services is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// A row does not have the five columns.
    #[error("line {line}: expected 5 tab-separated columns, found {found}")]
    Columns {
        /// 1-based line number.
        line: usize,
        /// Columns found.
        found: usize,
    },
    /// The port is not a number in 1..=65535.
    #[error("line {line}: port {value:?} is not a TCP port")]
    Port {
        /// 1-based line number.
        line: usize,
        /// The text found.
        value: String,
    },
    /// The SPIFFE id is not `spiffe://fitflow/<name>`.
    #[error("line {line}: spiffe id must be spiffe://fitflow/{name}")]
    SpiffeId {
        /// 1-based line number.
        line: usize,
        /// The row's service name.
        name: String,
    },
    /// A name or port appears twice.
    #[error("line {line}: {what} {value:?} appears twice")]
    Duplicate {
        /// 1-based line number.
        line: usize,
        /// `name` or `port`.
        what: &'static str,
        /// The repeated value.
        value: String,
    },
}

/// Parses a table of services: `#` starts a comment line, blank lines are
/// skipped, every other line is `name port schema spiffe_id callers`
/// separated by tabs, with `callers` comma-separated.
pub fn parse(text: &str) -> Result<Vec<ServiceSpec>, TableError> {
    let mut specs: Vec<ServiceSpec> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let columns: Vec<&str> = trimmed.split('\t').map(str::trim).collect();
        let [name, port, schema, spiffe_id, callers] = columns[..] else {
            return Err(TableError::Columns {
                line,
                found: columns.len(),
            });
        };
        let port: u16 =
            port.parse()
                .ok()
                .filter(|port| *port != 0)
                .ok_or_else(|| TableError::Port {
                    line,
                    value: port.to_owned(),
                })?;
        if spiffe_id != format!("spiffe://fitflow/{name}") {
            return Err(TableError::SpiffeId {
                line,
                name: name.to_owned(),
            });
        }
        if specs.iter().any(|spec| spec.name == name) {
            return Err(TableError::Duplicate {
                line,
                what: "name",
                value: name.to_owned(),
            });
        }
        if specs.iter().any(|spec| spec.port == port) {
            return Err(TableError::Duplicate {
                line,
                what: "port",
                value: port.to_string(),
            });
        }
        specs.push(ServiceSpec {
            name: name.to_owned(),
            port,
            schema: schema.to_owned(),
            spiffe_id: spiffe_id.to_owned(),
            callers: callers
                .split(',')
                .map(str::trim)
                .filter(|caller| !caller.is_empty())
                .map(str::to_owned)
                .collect(),
        });
    }
    Ok(specs)
}

/// The committed table of services, parsed once. A malformed table is a
/// build defect caught by this crate's tests, so it panics here.
pub fn services_table() -> &'static [ServiceSpec] {
    static TABLE: OnceLock<Vec<ServiceSpec>> = OnceLock::new();
    TABLE.get_or_init(|| parse(SERVICES_TSV).expect("deploy/services.tsv is well-formed"))
}

/// The row of service `name`, if the table has one.
pub fn spec(name: &str) -> Option<&'static ServiceSpec> {
    services_table().iter().find(|spec| spec.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_table_lists_seven_services_on_their_fixed_ports() {
        let names: Vec<(&str, u16)> = services_table()
            .iter()
            .map(|spec| (spec.name.as_str(), spec.port))
            .collect();
        assert_eq!(
            names,
            [
                ("identity", 50051),
                ("tenancy", 50052),
                ("clients", 50053),
                ("scheduling", 50054),
                ("documentation", 50055),
                ("billing", 50056),
                ("audit", 50057),
            ]
        );
    }

    #[test]
    fn a_row_with_a_missing_column_is_refused_with_its_line() {
        let error = parse("# header\nidentity\t50051\tidentity\n").unwrap_err();
        assert_eq!(error, TableError::Columns { line: 2, found: 3 });
    }

    #[test]
    fn a_port_used_twice_is_refused() {
        let text = "a\t1\ta\tspiffe://fitflow/a\tgateway\nb\t1\tb\tspiffe://fitflow/b\tgateway\n";
        assert!(matches!(
            parse(text),
            Err(TableError::Duplicate { what: "port", .. })
        ));
    }

    #[test]
    fn a_spiffe_id_that_names_another_service_is_refused() {
        let text = "a\t1\ta\tspiffe://fitflow/b\tgateway\n";
        assert!(matches!(parse(text), Err(TableError::SpiffeId { .. })));
    }
}
