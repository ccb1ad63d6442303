//! Configuration from environment variables, with errors that name the variable.

use std::str::FromStr;

/// A missing or malformed configuration value. The message names the
/// variable but never repeats its value, which may be a secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("{var} is required but not set")]
    Missing {
        /// The variable's name.
        var: String,
    },
    /// A variable is set but cannot be used.
    #[error("{var} is invalid: {reason}")]
    Invalid {
        /// The variable's name.
        var: String,
        /// What is wrong, without the value.
        reason: String,
    },
}

/// Reads a required variable.
pub fn required(var: &str) -> Result<String, ConfigError> {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => Ok(value),
        Ok(_) | Err(std::env::VarError::NotPresent) => {
            Err(ConfigError::Missing { var: var.into() })
        }
        Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::Invalid {
            var: var.into(),
            reason: "not valid UTF-8".into(),
        }),
    }
}

/// Reads an optional variable.
pub fn optional(var: &str) -> Result<Option<String>, ConfigError> {
    match required(var) {
        Ok(value) => Ok(Some(value)),
        Err(ConfigError::Missing { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Reads and parses an optional variable, or returns `default`.
pub fn parsed_or<T: FromStr>(var: &str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match optional(var)? {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|error: T::Err| ConfigError::Invalid {
                var: var.into(),
                reason: error.to_string(),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_variable_is_named_in_the_error() {
        let error = required("FITFLOW_TEST_SURELY_UNSET_VARIABLE").unwrap_err();
        assert_eq!(
            error.to_string(),
            "FITFLOW_TEST_SURELY_UNSET_VARIABLE is required but not set"
        );
    }

    #[test]
    fn an_unset_optional_variable_takes_its_default() {
        let port: u16 = parsed_or("FITFLOW_TEST_SURELY_UNSET_PORT", 50051).unwrap();
        assert_eq!(port, 50051);
    }
}
