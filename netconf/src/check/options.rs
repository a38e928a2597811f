//! Reading a [`Document`] field by field: each option is converted on its
//! own, and what is wrong with it is recorded, so one check reports every
//! error of every option in every section.

use super::document::{Document, Entry, Section, Value};
use super::rules;
use super::{ConfigError, ConfigErrors};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The findings so far for one file.
#[derive(Debug)]
pub struct Report {
    file: PathBuf,
    found: Vec<ConfigError>,
}

impl Report {
    pub fn new(file: &Path) -> Report {
        Report {
            file: file.to_owned(),
            found: Vec::new(),
        }
    }

    pub fn error(&mut self, line: usize, option: &str, message: &str) {
        self.found
            .push(ConfigError::new(&self.file, line, option, message));
    }

    pub fn warning(&mut self, line: usize, option: &str, message: &str) {
        self.found
            .push(ConfigError::warning(&self.file, line, option, message));
    }

    pub fn has_errors(&self) -> bool {
        self.found.iter().any(ConfigError::is_error)
    }

    /// Reads the options of `section`; `label` starts each option's name
    /// in messages (`"map_server[1]."`, `"site 'a' "`, or `""`).
    pub fn options<'a>(&'a mut self, section: &'a Section, label: &str) -> Options<'a> {
        Options {
            report: self,
            section,
            label: label.to_string(),
            known: Vec::new(),
            errors: 0,
        }
    }

    /// Warns about the sections of `doc` whose kind is not in `known`.
    pub fn unknown_sections(&mut self, doc: &Document, known: &[&str]) {
        for section in &doc.sections {
            if !section.kind.is_empty() && !known.contains(&section.kind.as_str()) {
                let hint = did_you_mean(&section.kind, known.iter().copied());
                let message = format!("unknown section type '{}', ignored{hint}", section.kind);
                self.warning(section.line, "", &message);
            }
        }
    }

    /// The configuration and its warnings, or (on any error, or when no
    /// configuration could be built) everything found, in line order.
    pub fn finish<T>(mut self, value: Option<T>) -> Result<(T, Vec<ConfigError>), ConfigErrors> {
        self.found.sort_by_key(|e| e.line);
        match value {
            Some(value) if !self.has_errors() => Ok((value, self.found)),
            _ => Err(ConfigErrors(self.found)),
        }
    }
}

/// The options of one section. Every option asked for is known; the rest
/// are reported by [`Options::finish`] as unknown (a warning, with the
/// closest known name).
pub struct Options<'a> {
    report: &'a mut Report,
    section: &'a Section,
    label: String,
    known: Vec<String>,
    /// Errors recorded through this reader.
    errors: usize,
}

impl<'a> Options<'a> {
    /// The option `name`, now known. Empty UCI text is unset, as libuci
    /// reads `option NAME ''`.
    fn entry(&mut self, name: &str) -> Option<&'a Entry> {
        self.known.push(name.to_string());
        self.section
            .entry(name)
            .filter(|e| !matches!(&e.value, Value::Text(s) if s.is_empty()))
    }

    /// The name of `name` in messages.
    pub fn name(&self, name: &str) -> String {
        format!("{}{name}", self.label)
    }

    /// Records an error about option `name` at `line`.
    pub fn error(&mut self, line: usize, name: &str, message: &str) {
        self.errors += 1;
        let option = self.name(name);
        self.report.error(line, &option, message);
    }

    /// An error about option `name`, at its line (or the section's when
    /// it is not set).
    pub fn error_on(&mut self, name: &str, message: &str) {
        let line = self.line(name);
        self.error(line, name, message);
    }

    /// A warning about option `name`, at its line.
    pub fn warning_on(&mut self, name: &str, message: &str) {
        let line = self.line(name);
        let option = self.name(name);
        self.report.warning(line, &option, message);
    }

    /// The line of option `name`, or else of the section header.
    pub fn line(&self, name: &str) -> usize {
        self.section
            .entry(name)
            .map_or(self.section.line, |e| e.line)
    }

    /// Whether any option of this section was wrong.
    pub fn had_errors(&self) -> bool {
        self.errors > 0
    }

    pub fn is_set(&mut self, name: &str) -> bool {
        self.entry(name).is_some()
    }

    /// Option `name` converted by `convert`; None when it is not set or
    /// is wrong (then the error is recorded).
    pub fn get<T>(
        &mut self,
        name: &str,
        convert: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Option<T> {
        let entry = self.entry(name)?;
        match convert(&entry.value) {
            Ok(value) => Some(value),
            Err(message) => {
                self.error(entry.line, name, &message);
                None
            }
        }
    }

    /// As [`Options::get`], and an error when it is not set; `what` says
    /// what it must be.
    pub fn required<T>(
        &mut self,
        name: &str,
        what: &str,
        convert: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Option<T> {
        if self.entry(name).is_none() {
            match self.section.entry(name) {
                Some(empty) => self.error(empty.line, name, "must not be empty"),
                None => {
                    let line = self.section.line;
                    self.error(line, name, &format!("missing: {what}"));
                }
            }
            return None;
        }
        self.get(name, convert)
    }

    /// A list: every item converted, each error at its item's line. One
    /// UCI `option` (untyped text) is a list of one, as libuci reads it.
    pub fn list<T>(
        &mut self,
        name: &str,
        convert: impl Fn(&Value) -> Result<T, String>,
    ) -> Option<Vec<T>> {
        let entry = self.entry(name)?;
        let items = match &entry.value {
            Value::Array(items) => items.clone(),
            Value::Text(_) => vec![super::Item {
                line: entry.line,
                value: entry.value.clone(),
            }],
            other => {
                let message = format!("expected an array, found {}", other.type_name());
                self.error(entry.line, name, &message);
                return None;
            }
        };
        let mut list = Vec::new();
        let mut ok = true;
        for item in &items {
            match convert(&item.value) {
                Ok(value) => list.push(value),
                Err(message) => {
                    self.error(item.line, name, &message);
                    ok = false;
                }
            }
        }
        ok.then_some(list)
    }

    /// Marks options read by others (an init script) as known.
    pub fn known(&mut self, names: &[&str]) {
        self.known.extend(names.iter().map(|n| n.to_string()));
    }

    /// Warns about every option that was not asked for.
    pub fn finish(self) {
        for entry in &self.section.entries {
            if !self.known.contains(&entry.name) {
                let hint = did_you_mean(&entry.name, self.known.iter().map(String::as_str));
                let option = format!("{}{}", self.label, entry.name);
                let message = format!("unknown option, ignored{hint}");
                self.report.warning(entry.line, &option, &message);
            }
        }
    }
}

/// `" (did you mean 'x'?)"` when exactly one known name is close to `name`.
fn did_you_mean<'k>(name: &str, known: impl Iterator<Item = &'k str>) -> String {
    match rules::closest(name, known) {
        Some(close) => format!(" (did you mean '{close}'?)"),
        None => String::new(),
    }
}

/// Text: a TOML string or UCI text.
pub fn text(value: &Value) -> Result<&str, String> {
    match value {
        Value::Text(s) | Value::String(s) => Ok(s),
        other => Err(format!("expected a string, found {}", other.type_name())),
    }
}

/// A string that must not be empty.
pub fn nonempty(value: &Value) -> Result<String, String> {
    match text(value)? {
        "" => Err("must not be empty".into()),
        s => Ok(s.to_string()),
    }
}

/// Text parsed as `T`; `what` names what it must be.
pub fn parsed<T: FromStr>(what: &str) -> impl Fn(&Value) -> Result<T, String> + '_ {
    move |value| {
        let s = text(value)?;
        s.trim().parse().map_err(|_| format!("'{s}' is not {what}"))
    }
}

/// An integer: a TOML integer, or UCI text of digits; `what` names what it
/// must be (the range is part of the message).
pub fn integer<T: TryFrom<i128> + FromStr>(
    what: &str,
) -> impl Fn(&Value) -> Result<T, String> + '_ {
    move |value| match value {
        Value::Integer(i) => T::try_from(*i).map_err(|_| format!("{i} is not {what}")),
        Value::Text(s) => s.trim().parse().map_err(|_| format!("'{s}' is not {what}")),
        other => Err(format!("expected {what}, found {}", other.type_name())),
    }
}

/// A boolean: TOML's, or UCI's `1`/`0`, `true`/`false`, `yes`/`no`,
/// `on`/`off`, `enabled`/`disabled` (what libuci's users write).
pub fn boolean(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Text(s) => match s.trim() {
            "1" | "true" | "yes" | "on" | "enabled" => Ok(true),
            "0" | "false" | "no" | "off" | "disabled" => Ok(false),
            _ => Err(format!("'{s}' is not a boolean (1 or 0)")),
        },
        other => Err(format!("expected a boolean, found {}", other.type_name())),
    }
}
