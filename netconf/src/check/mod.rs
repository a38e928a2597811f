//! What a configuration check reports: every error and warning, each with
//! the file, line and option it concerns. Shared by both daemons' checks
//! (TOML and UCI front ends alike), so both speak and judge the same way:
//! [`document`] is a configuration file as sections of options with their
//! lines, [`options`] reads typed values out of it field by field,
//! collecting every error, and [`rules`] holds the checks both daemons
//! apply (interface names, durations, ports, keys, prefixes).

pub mod document;
pub mod options;
pub mod rules;
#[cfg(feature = "toml")]
mod toml;

use std::fmt;
use std::path::{Path, PathBuf};

pub use document::{Document, Entry, Item, Section, Value};
pub use options::{Options, Report};

/// Whether a finding stops the daemon from starting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Severity {
    #[default]
    Error,
    /// Reported, but the configuration is used (an unknown option).
    Warning,
}

/// One finding in a configuration: where, which option, what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the error has no single place.
    pub line: usize,
    pub option: String,
    pub message: String,
    pub severity: Severity,
}

impl ConfigError {
    pub fn new(file: &Path, line: usize, option: &str, message: &str) -> ConfigError {
        ConfigError {
            file: file.to_owned(),
            line,
            option: option.to_string(),
            message: message.to_string(),
            severity: Severity::Error,
        }
    }

    pub fn warning(file: &Path, line: usize, option: &str, message: &str) -> ConfigError {
        ConfigError {
            severity: Severity::Warning,
            ..ConfigError::new(file, line, option, message)
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// `file:line: option: message`; a warning starts with `warning: ` (the
/// OpenWrt init scripts log those lines at daemon.warn).
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.severity == Severity::Warning {
            write!(f, "warning: ")?;
        }
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if !self.option.is_empty() {
            write!(f, ": {}", self.option)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Everything found in a configuration that has at least one error: the
/// errors and the warnings, in line order, so that an operator fixing the
/// errors sees the warnings too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The errors alone, without the warnings.
    pub fn errors(&self) -> impl Iterator<Item = &ConfigError> {
        self.0.iter().filter(|e| e.is_error())
    }

    /// A single error with no line (e.g. the file cannot be read).
    pub fn one(file: &Path, message: &str) -> ConfigErrors {
        ConfigErrors(vec![ConfigError::new(file, 0, "", message)])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
