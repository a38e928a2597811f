//! Commands to [`Config`]: argument counts, name rules and the section
//! bookkeeping of libuci's `uci_parse_package`, `uci_parse_config` and
//! `uci_parse_option` (file.c).

use std::collections::HashMap;

use crate::error::{ParseError, ParseErrorKind};
use crate::lexer::{Command, Keyword, Lexer, Pos, Word};
use crate::model::{Config, OptionKind, Section, UciOption};
use crate::names;

/// Parse one UCI file.
pub fn parse(src: &str) -> Result<Config, ParseError> {
    if let Some(offset) = src.find('\0') {
        return Err(position_of(src, offset).error(ParseErrorKind::NulByte));
    }
    let mut state = State::default();
    let mut lexer = Lexer::new(src);
    while let Some(command) = lexer.next_command()? {
        state.apply(command)?;
    }
    Ok(state.config)
}

/// Parse one UCI file given as bytes, as read from disk.
pub fn parse_bytes(src: &[u8]) -> Result<Config, ParseError> {
    match std::str::from_utf8(src) {
        Ok(text) => parse(text),
        Err(e) => {
            let valid = src.get(..e.valid_up_to()).unwrap_or_default();
            // The prefix is valid UTF-8 by definition; lossy never alters it.
            let prefix = String::from_utf8_lossy(valid);
            Err(position_of(&prefix, prefix.len()).error(ParseErrorKind::InvalidUtf8))
        }
    }
}

/// Line and column of a byte offset.
fn position_of(src: &str, offset: usize) -> Pos {
    let before = src.get(..offset).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).unwrap_or("").chars().count() + 1;
    Pos { line, column }
}

#[derive(Default)]
struct State {
    config: Config,
    /// Index of the section that `option` and `list` lines go to.
    current: Option<usize>,
    /// Named sections, to merge a repeated `config TYPE 'NAME'`.
    named: HashMap<String, usize>,
}

impl State {
    fn apply(&mut self, command: Command) -> Result<(), ParseError> {
        let line = command.at.line;
        let keyword = command.keyword;
        let at = command.at;
        let mut args = Args::new(command);
        match keyword {
            Keyword::Package => {
                let name = args.required(ParseErrorKind::MissingPackageName)?;
                if !names::is_package_name(&name.text) {
                    return Err(name
                        .pos
                        .error(ParseErrorKind::InvalidPackageName(name.text)));
                }
                args.finish()?;
                if self.config.package.is_some() {
                    return Err(at.error(ParseErrorKind::DuplicatePackage));
                }
                self.config.package = Some(name.text);
            }
            Keyword::Config => {
                let kind = args.required(ParseErrorKind::MissingSectionType)?;
                if !names::is_section_type(&kind.text) {
                    return Err(kind
                        .pos
                        .error(ParseErrorKind::InvalidSectionType(kind.text)));
                }
                let name = args.optional();
                if let Some(name) = &name {
                    if !names::is_name(&name.text) {
                        let text = name.text.clone();
                        return Err(name.pos.error(ParseErrorKind::InvalidSectionName(text)));
                    }
                }
                args.finish()?;
                self.open_section(kind, name, line)?;
            }
            Keyword::Option | Keyword::List => {
                let Some(section) = self.current.and_then(|i| self.config.sections.get_mut(i))
                else {
                    return Err(at.error(ParseErrorKind::OptionOutsideSection));
                };
                let name = args.required(ParseErrorKind::MissingOptionName)?;
                if !names::is_name(&name.text) {
                    return Err(name.pos.error(ParseErrorKind::InvalidOptionName(name.text)));
                }
                // A missing value is an empty one, as in libuci.
                let value = args.optional().map(|w| w.text).unwrap_or_default();
                args.finish()?;
                let kind = if keyword == Keyword::List {
                    OptionKind::List
                } else {
                    OptionKind::Option
                };
                section.options.push(UciOption {
                    kind,
                    name: name.text,
                    value,
                    line,
                });
            }
        }
        Ok(())
    }

    /// A named section seen before is reopened (libuci's `uci_set` on an
    /// existing section); a new one goes to the end.
    fn open_section(
        &mut self,
        kind: Word,
        name: Option<Word>,
        line: usize,
    ) -> Result<(), ParseError> {
        if let Some(name) = name {
            if let Some(&i) = self.named.get(&name.text) {
                if let Some(section) = self.config.sections.get(i) {
                    if section.kind != kind.text {
                        return Err(kind.pos.error(ParseErrorKind::SectionTypeMismatch {
                            name: name.text,
                            first: section.kind.clone(),
                            second: kind.text,
                        }));
                    }
                    self.current = Some(i);
                    return Ok(());
                }
            }
            self.named
                .insert(name.text.clone(), self.config.sections.len());
            self.push_section(kind.text, Some(name.text), line);
        } else {
            self.push_section(kind.text, None, line);
        }
        Ok(())
    }

    fn push_section(&mut self, kind: String, name: Option<String>, line: usize) {
        self.current = Some(self.config.sections.len());
        self.config.sections.push(Section {
            kind,
            name,
            options: Vec::new(),
            line,
        });
    }
}

/// A command's arguments, taken in order. libuci does not tell an empty
/// argument (`''`) from a missing one, so neither do we.
struct Args {
    words: std::vec::IntoIter<Word>,
    end: Pos,
}

impl Args {
    fn new(command: Command) -> Self {
        Args {
            words: command.args.into_iter(),
            end: command.end,
        }
    }

    fn optional(&mut self) -> Option<Word> {
        self.words.next().filter(|w| !w.text.is_empty())
    }

    fn required(&mut self, missing: ParseErrorKind) -> Result<Word, ParseError> {
        match self.words.next() {
            Some(w) if !w.text.is_empty() => Ok(w),
            Some(w) => Err(w.pos.error(missing)),
            None => Err(self.end.error(missing)),
        }
    }

    /// Extra empty words are harmless to libuci; anything else is an error.
    fn finish(mut self) -> Result<(), ParseError> {
        match self.words.find(|w| !w.text.is_empty()) {
            Some(w) => Err(w.pos.error(ParseErrorKind::UnexpectedArgument(w.text))),
            None => Ok(()),
        }
    }
}
