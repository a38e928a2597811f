//! Errors: where a file stops being UCI and why, or why a config cannot be
//! written as UCI.

use std::fmt;

/// A file that libuci would reject (or that we refuse, see [`ParseErrorKind`]).
///
/// `line` and `column` count from 1; columns count characters, so a tab or
/// an `ä` is one column, as an editor's cursor would show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub kind: ParseErrorKind,
}

/// What is wrong, with the offending text where there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// A `'` or `"` opened here and the file ended before its match.
    UnterminatedQuote(char),
    /// A command word other than `package`, `config`, `option`, `list`
    /// (or libuci's one-letter forms `p`, `c`, `o`, `l`).
    InvalidCommand(String),
    /// `package` with no name after it.
    MissingPackageName,
    /// `config` with no section type after it.
    MissingSectionType,
    /// `option` or `list` with no name after it.
    MissingOptionName,
    /// Package names allow `[A-Za-z0-9_-]`.
    InvalidPackageName(String),
    /// Section types allow printable ASCII without spaces.
    InvalidSectionType(String),
    /// Section names allow `[A-Za-z0-9_]`.
    InvalidSectionName(String),
    /// Option and list names allow `[A-Za-z0-9_]`.
    InvalidOptionName(String),
    /// A word after the last argument a command takes.
    UnexpectedArgument(String),
    /// `option` or `list` before the first `config`.
    OptionOutsideSection,
    /// A named section declared again with another type; libuci refuses
    /// this in its default (strict) mode.
    SectionTypeMismatch {
        name: String,
        first: String,
        second: String,
    },
    /// A second `package` line: that is a multi-package `uci export`
    /// stream, not one config file.
    DuplicatePackage,
    /// C strings end at NUL, so libuci cannot see past it.
    NulByte,
    /// Only from [`crate::parse_bytes`].
    InvalidUtf8,
}

impl ParseError {
    pub(crate) fn new(line: usize, column: usize, kind: ParseErrorKind) -> Self {
        ParseError { line, column, kind }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.kind
        )
    }
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ParseErrorKind::*;
        match self {
            UnterminatedQuote(q) => write!(f, "unterminated quote ({q} opened here)"),
            InvalidCommand(w) => write!(
                f,
                "invalid command {w:?}, expected package, config, option or list"
            ),
            MissingPackageName => f.write_str("package without a name"),
            MissingSectionType => f.write_str("config without a section type"),
            MissingOptionName => f.write_str("option or list without a name"),
            InvalidPackageName(n) => {
                write!(f, "invalid package name {n:?} (allowed: A-Z a-z 0-9 _ -)")
            }
            InvalidSectionType(t) => write!(
                f,
                "invalid section type {t:?} (allowed: printable ASCII, no spaces)"
            ),
            InvalidSectionName(n) => {
                write!(f, "invalid section name {n:?} (allowed: A-Z a-z 0-9 _)")
            }
            InvalidOptionName(n) => {
                write!(f, "invalid option name {n:?} (allowed: A-Z a-z 0-9 _)")
            }
            UnexpectedArgument(w) => write!(f, "unexpected {w:?}: too many arguments"),
            OptionOutsideSection => f.write_str("option or list before the first config section"),
            SectionTypeMismatch {
                name,
                first,
                second,
            } => write!(
                f,
                "section {name:?} has type {first:?} earlier in the file, {second:?} here"
            ),
            DuplicatePackage => f.write_str("second package line (one package per file)"),
            NulByte => f.write_str("NUL byte"),
            InvalidUtf8 => f.write_str("invalid UTF-8"),
        }
    }
}

impl std::error::Error for ParseError {}

/// A [`crate::Config`] that has no UCI text which reads back as itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    InvalidPackageName(String),
    InvalidSectionType(String),
    InvalidSectionName(String),
    InvalidOptionName(String),
    /// Two sections with one name: libuci would read them back as one.
    DuplicateSectionName(String),
    /// C strings end at NUL.
    NulInValue {
        option: String,
    },
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use WriteError::*;
        match self {
            InvalidPackageName(n) => write!(f, "invalid package name {n:?}"),
            InvalidSectionType(t) => write!(f, "invalid section type {t:?}"),
            InvalidSectionName(n) => write!(f, "invalid section name {n:?}"),
            InvalidOptionName(n) => write!(f, "invalid option name {n:?}"),
            DuplicateSectionName(n) => write!(f, "two sections named {n:?}"),
            NulInValue { option } => write!(f, "option {option:?}: value holds a NUL byte"),
        }
    }
}

impl std::error::Error for WriteError {}
