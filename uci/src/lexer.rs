//! Turns UCI text into commands and their argument words, following
//! libuci's line reader (`uci_parse_line`, `parse_str` and friends in
//! file.c). Quoting, backslashes, comments, `;` and line continuations are
//! all settled here, so the parser only sees finished words.
//!
//! The rules, as libuci applies them:
//! - A command word runs to the next space or tab and is not unquoted.
//! - An argument is a run of pieces up to whitespace: bare characters,
//!   `'...'` (taken literally, no escapes), `"..."` (backslash escapes).
//!   Pieces concatenate: `'a'"b"c` is `abc`.
//! - Outside single quotes, `\x` is `x` for any character (no `\n` or `\t`
//!   decoding), and a backslash before the end of a line (`\n` or `\r\n`)
//!   joins the next line on at that point.
//! - Quoted strings may span lines; the newlines are part of the value.
//! - Outside quotes, `#` starts a comment to the end of the line, even in
//!   the middle of a word, and `;` ends the command. (libuci's own `;`
//!   handling depends on which argument the `;` ends: it may take the
//!   rest of the line, drop it, or call it an invalid command. We always
//!   take it; see the crate docs.)

use crate::error::{ParseError, ParseErrorKind};

/// A place in the input; both count from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub fn error(self, kind: ParseErrorKind) -> ParseError {
        ParseError::new(self.line, self.column, kind)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyword {
    Package,
    Config,
    Option,
    List,
}

/// One argument after unquoting; `pos` is where its first piece starts.
#[derive(Debug)]
pub(crate) struct Word {
    pub text: String,
    pub pos: Pos,
}

#[derive(Debug)]
pub(crate) struct Command {
    pub keyword: Keyword,
    /// Where the command word starts.
    pub at: Pos,
    pub args: Vec<Word>,
    /// Where the command ended (newline, `;`, `#` or end of input): the
    /// place to blame for a missing argument.
    pub end: Pos,
}

pub(crate) struct Lexer<'a> {
    src: &'a str,
    offset: usize,
    pos: Pos,
    /// Where the current run of quoted strings spanning lines began: after
    /// a missing quote every later quote pairs with the next line's, so an
    /// unterminated quote at the end is reported here, where the pairing
    /// went wrong, not at the last line.
    multiline_since: Option<(Pos, char)>,
}

/// C's `isspace` in the C locale, which is what libuci splits on.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// Whitespace that does not end the line.
fn is_blank(c: char) -> bool {
    c != '\n' && is_space(c)
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str) -> Self {
        Lexer {
            src,
            offset: 0,
            pos: Pos { line: 1, column: 1 },
            multiline_since: None,
        }
    }

    fn rest(&self) -> &'a str {
        self.src.get(self.offset..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.offset += c.len_utf8();
        if c == '\n' {
            self.pos.line += 1;
            self.pos.column = 1;
        } else {
            self.pos.column += 1;
        }
        Some(c)
    }

    fn skip_while(&mut self, keep: impl Fn(char) -> bool) {
        while self.peek().is_some_and(&keep) {
            self.bump();
        }
    }

    /// The next command, or `None` at the end of the input.
    pub fn next_command(&mut self) -> Result<Option<Command>, ParseError> {
        loop {
            self.skip_while(is_blank);
            match self.peek() {
                None => return Ok(None),
                Some('\n') => {
                    self.bump();
                }
                Some('#') => self.skip_while(|c| c != '\n'),
                Some(_) => return self.command().map(Some),
            }
        }
    }

    fn command(&mut self) -> Result<Command, ParseError> {
        let at = self.pos;
        let start = self.offset;
        // libuci splits the command word off with strtok(" \t"): no quotes.
        self.skip_while(|c| !matches!(c, ' ' | '\t' | '\n'));
        let word = self.src.get(start..self.offset).unwrap_or("");
        let keyword = match word {
            "package" | "p" => Keyword::Package,
            "config" | "c" => Keyword::Config,
            "option" | "o" => Keyword::Option,
            "list" | "l" => Keyword::List,
            _ => return Err(at.error(ParseErrorKind::InvalidCommand(word.to_owned()))),
        };
        let mut args = Vec::new();
        loop {
            self.skip_while(is_blank);
            let end = self.pos;
            match self.peek() {
                None => {}
                // Leave the newline and the comment to next_command.
                Some('\n') | Some('#') => {}
                Some(';') => {
                    self.bump();
                }
                Some(_) => {
                    args.push(self.word()?);
                    continue;
                }
            }
            return Ok(Command {
                keyword,
                at,
                args,
                end,
            });
        }
    }

    /// One argument; the caller has checked that it does not start with
    /// whitespace, `#` or `;`, so this always consumes input.
    fn word(&mut self) -> Result<Word, ParseError> {
        let pos = self.pos;
        let mut text = String::new();
        while let Some(c) = self.peek() {
            match c {
                '\'' => self.single_quoted(&mut text)?,
                '"' => self.double_quoted(&mut text)?,
                '\\' => self.backslash(&mut text),
                '#' | ';' => break,
                c if is_space(c) => break,
                c => {
                    text.push(c);
                    self.bump();
                }
            }
        }
        Ok(Word { text, pos })
    }

    fn single_quoted(&mut self, text: &mut String) -> Result<(), ParseError> {
        let open = self.pos;
        self.bump();
        loop {
            match self.bump() {
                None => return Err(self.unterminated(open, '\'')),
                Some('\'') => {
                    self.closed(open, '\'');
                    return Ok(());
                }
                Some(c) => text.push(c),
            }
        }
    }

    /// A quoted string that opened at `open` has closed here.
    fn closed(&mut self, open: Pos, quote: char) {
        if open.line == self.pos.line {
            self.multiline_since = None;
        } else if self.multiline_since.is_none() {
            self.multiline_since = Some((open, quote));
        }
    }

    /// The input ended inside a quote opened at `open`: blame the first
    /// quote of the run of line-spanning ones that led here.
    fn unterminated(&self, open: Pos, quote: char) -> ParseError {
        let (at, quote) = self.multiline_since.unwrap_or((open, quote));
        at.error(ParseErrorKind::UnterminatedQuote(quote))
    }

    fn double_quoted(&mut self, text: &mut String) -> Result<(), ParseError> {
        let open = self.pos;
        self.bump();
        loop {
            match self.peek() {
                None => return Err(self.unterminated(open, '"')),
                Some('"') => {
                    self.bump();
                    self.closed(open, '"');
                    return Ok(());
                }
                Some('\\') => self.backslash(text),
                Some(c) => {
                    text.push(c);
                    self.bump();
                }
            }
        }
    }

    /// `\` followed by a line end continues on the next line; followed by
    /// anything else, stands for that character.
    fn backslash(&mut self, text: &mut String) {
        self.bump();
        match (self.peek(), self.peek_second()) {
            (None, _) => {}
            (Some('\n'), _) => {
                self.bump();
            }
            (Some('\r'), Some('\n')) => {
                self.bump();
                self.bump();
            }
            (Some(c), _) => {
                text.push(c);
                self.bump();
            }
        }
    }
}
