//! What a configuration check reports: every error, each with the file,
//! line and option it concerns. Shared by both daemons' checks (TOML and
//! UCI front ends alike).

use std::fmt;
use std::path::{Path, PathBuf};

/// One configuration error: where, which option, what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the error has no single place.
    pub line: usize,
    pub option: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(file: &Path, line: usize, option: &str, message: &str) -> ConfigError {
        ConfigError {
            file: file.to_owned(),
            line,
            option: option.to_string(),
            message: message.to_string(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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

/// Every error found in one configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

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
