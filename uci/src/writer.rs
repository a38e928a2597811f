//! [`Config`] to UCI text, laid out as libuci's `uci_export_package`
//! (file.c) lays out /etc/config files, so a file libuci wrote comes back
//! byte for byte.

use std::collections::HashSet;

use crate::error::WriteError;
use crate::model::{Config, OptionKind};
use crate::names;

/// Write a config as UCI text.
///
/// Values go in single quotes, where nothing is special but the quote
/// itself; a `'` inside becomes `'\''` (close, escaped quote, reopen), the
/// same trick libuci's export uses. Whatever [`crate::parse`] returns
/// writes without error, and `parse(&write(c)?)? == c` for every config
/// that writes.
pub fn write(config: &Config) -> Result<String, WriteError> {
    let mut out = String::new();
    if let Some(package) = &config.package {
        if !names::is_package_name(package) {
            return Err(WriteError::InvalidPackageName(package.clone()));
        }
        out.push_str("package ");
        out.push_str(package);
        out.push('\n');
    }
    let mut seen = HashSet::new();
    for section in &config.sections {
        if !names::is_section_type(&section.kind) {
            return Err(WriteError::InvalidSectionType(section.kind.clone()));
        }
        out.push_str("\nconfig ");
        // libuci writes the type bare; quote it when a bare word would
        // not read back (types may hold `#`, `;`, quotes, backslashes).
        if section.kind.contains(['\'', '"', '\\', '#', ';']) {
            push_quoted(&mut out, &section.kind);
        } else {
            out.push_str(&section.kind);
        }
        if let Some(name) = &section.name {
            if !names::is_name(name) {
                return Err(WriteError::InvalidSectionName(name.clone()));
            }
            if !seen.insert(name.as_str()) {
                return Err(WriteError::DuplicateSectionName(name.clone()));
            }
            out.push(' ');
            push_quoted(&mut out, name);
        }
        out.push('\n');
        for option in &section.options {
            if !names::is_name(&option.name) {
                return Err(WriteError::InvalidOptionName(option.name.clone()));
            }
            if option.value.contains('\0') {
                return Err(WriteError::NulInValue {
                    option: option.name.clone(),
                });
            }
            out.push_str(match option.kind {
                OptionKind::Option => "\toption ",
                OptionKind::List => "\tlist ",
            });
            out.push_str(&option.name);
            out.push(' ');
            push_quoted(&mut out, &option.value);
            out.push('\n');
        }
    }
    out.push('\n');
    Ok(out)
}

fn push_quoted(out: &mut String, value: &str) {
    out.push('\'');
    out.push_str(&value.replace('\'', "'\\''"));
    out.push('\'');
}
