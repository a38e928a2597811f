//! TOML text to a [`Document`] (the `toml` feature), through toml's spanned
//! tree so that every option keeps its line.

use super::document::{Document, Entry, Item, Section, Value};
use super::{ConfigError, ConfigErrors};
use std::path::Path;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

impl Document {
    /// Reads a TOML file (`path` names it in errors). A syntax error ends
    /// the reading: the syntax errors come back, with a word that no
    /// option was checked.
    pub fn from_toml(path: &Path, text: &str) -> Result<Document, ConfigErrors> {
        document(path, text)
    }
}

fn document(path: &Path, text: &str) -> Result<Document, ConfigErrors> {
    let (root, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        let mut found: Vec<ConfigError> = errors
            .iter()
            .map(|e| {
                let at = e.span().map(|s| s.start);
                let line = at.map_or(0, |at| line_of(text, at));
                let option = at.map_or("", |at| key_on_line(text, at));
                ConfigError::new(path, line, option, e.message().trim_end())
            })
            .collect();
        found.push(ConfigError::new(
            path,
            0,
            "",
            "TOML syntax error: the options were not checked; check again once it parses",
        ));
        return Err(ConfigErrors(found));
    }
    let mut top = Section::default();
    let mut sections = Vec::new();
    for (key, value) in root.get_ref().iter() {
        let kind = key.get_ref().to_string();
        match value.get_ref() {
            DeValue::Table(table) => sections.push(Section {
                kind,
                index: 0,
                line: line_of(text, key.span().start),
                repeated: false,
                entries: entries(text, table),
            }),
            DeValue::Array(array) if !array.is_empty() && array.iter().all(is_table) => {
                for (index, element) in array.iter().enumerate() {
                    if let DeValue::Table(table) = element.get_ref() {
                        sections.push(Section {
                            kind: kind.clone(),
                            index,
                            // The span starts at the `[[kind]]` header.
                            line: line_of(text, element.span().start),
                            repeated: true,
                            entries: entries(text, table),
                        });
                    }
                }
            }
            _ => top.entries.push(entry(text, key, value)),
        }
    }
    sections.insert(0, top);
    Ok(Document { sections })
}

fn is_table(value: &Spanned<DeValue<'_>>) -> bool {
    matches!(value.get_ref(), DeValue::Table(_))
}

fn entries(text: &str, table: &DeTable<'_>) -> Vec<Entry> {
    table
        .iter()
        .map(|(key, value)| entry(text, key, value))
        .collect()
}

fn entry(
    text: &str,
    key: &Spanned<std::borrow::Cow<'_, str>>,
    value: &Spanned<DeValue<'_>>,
) -> Entry {
    Entry {
        name: key.get_ref().to_string(),
        line: line_of(text, key.span().start),
        value: convert(text, value.get_ref()),
    }
}

fn convert(text: &str, value: &DeValue<'_>) -> Value {
    match value {
        DeValue::String(s) => Value::String(s.to_string()),
        DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix())
            .map_or(Value::Other("an integer out of range"), Value::Integer),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Float(_) => Value::Other("a float"),
        DeValue::Datetime(_) => Value::Other("a date"),
        DeValue::Table(_) => Value::Other("a table"),
        DeValue::Array(array) => Value::Array(
            array
                .iter()
                .map(|item| Item {
                    line: line_of(text, item.span().start),
                    value: convert(text, item.get_ref()),
                })
                .collect(),
        ),
    }
}

/// 1-based line of byte `at`.
pub(super) fn line_of(text: &str, at: usize) -> usize {
    text.get(..at.min(text.len()))
        .map_or(0, |before| before.matches('\n').count())
        + 1
}

/// The key assigned on the line holding byte `at` (`key = value`), to name
/// the option of a syntax error.
fn key_on_line(text: &str, at: usize) -> &str {
    let start = text
        .get(..at.min(text.len()))
        .and_then(|before| before.rfind('\n'))
        .map_or(0, |n| n + 1);
    let line = text
        .get(start..)
        .and_then(|rest| rest.lines().next())
        .unwrap_or("");
    line.split_once('=').map_or("", |(key, _)| key.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_and_options_keep_their_lines() {
        let text = "a = 1\n[w]\nb = \"x\"\n[[site]]\nname = \"s\"\n\n[[site]]\n\nname = \"t\"\nl = [\n  \"p\",\n  \"q\",\n]\n";
        let doc = document(Path::new("f.toml"), text).unwrap();
        let found: Vec<(&str, usize, usize, bool)> = doc
            .sections
            .iter()
            .map(|s| (s.kind.as_str(), s.index, s.line, s.repeated))
            .collect();
        assert_eq!(
            found,
            [
                ("", 0, 0, false),
                ("site", 0, 4, true),
                ("site", 1, 7, true),
                ("w", 0, 2, false)
            ]
        );
        assert_eq!(doc.sections[0].entries[0].line, 1);
        let second = &doc.sections[2];
        assert_eq!(second.entry("name").map(|e| e.line), Some(9));
        let Some(Value::Array(items)) = second.entry("l").map(|e| &e.value) else {
            panic!("{second:?}");
        };
        let lines: Vec<usize> = items.iter().map(|i| i.line).collect();
        assert_eq!(lines, [11, 12]);
    }
}
