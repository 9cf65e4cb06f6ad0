//! Configuration errors: each names the field's path and what is wrong with it.

use super::schema::PathSegment;
use std::fmt;

/// One configuration error: the field's path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
    /// Set when the error is a member the schema doesn't know (serde reports only the first
    /// one of a configuration).
    pub(super) unknown_field: Option<UnknownField>,
}

impl ConfigError {
    pub(super) fn new(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.into(),
            message: message.into(),
            unknown_field: None,
        }
    }

    /// The member the schema doesn't know, when that is what this error is about.
    pub fn unknown_field(&self) -> Option<&UnknownField> {
        self.unknown_field.as_ref()
    }
}

/// A member of a configuration object that its schema struct has no field for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownField {
    /// Where the object holding it is (empty: the top-level object).
    pub parent: Vec<PathSegment>,
    /// The member's key.
    pub name: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every error found in a configuration (an invalid configuration is refused as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}
