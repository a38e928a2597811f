//! Broken files: the error names the line, the column and the fault.

use uci::{parse, parse_bytes, ParseError, ParseErrorKind as K};

fn err(src: &str) -> ParseError {
    match parse(src) {
        Ok(c) => panic!("parsed {src:?} as {c:?}"),
        Err(e) => e,
    }
}

fn at(src: &str) -> (usize, usize, K) {
    let e = err(src);
    (e.line, e.column, e.kind)
}

const HEAD: &str = "config agent 'main'\n\toption interface 'wg0'\n";

#[test]
fn unterminated_quote() {
    // The opening quote is the place to look at.
    let src = format!("{HEAD}\toption log_level 'info\n");
    assert_eq!(at(&src), (3, 19, K::UnterminatedQuote('\'')));
    // Quotes run over newlines, so a missing one pairs up with the next
    // line's opening quote, and so on down the file; the quote to fix is
    // where that run of line-spanning quotes began, not the last one.
    let src = format!("{HEAD}\toption log_level 'info\n\toption port '4342'\n");
    assert_eq!(at(&src), (3, 19, K::UnterminatedQuote('\'')));
    let src = format!(
        "{HEAD}\toption log_level 'info\n\toption port '4342'\n\toption tun 'lgtun0'\n\
         config map_server\n\toption address '192.0.2.1'\n\toption port '51820'\n\
         \toption key 'k'\n\toption control_address '100.64.0.1'\n"
    );
    assert_eq!(at(&src), (3, 19, K::UnterminatedQuote('\'')));
    // A value meant to span lines, before the mistake, is not blamed.
    let src = format!(
        "{HEAD}\toption motd 'two\nlines'\n\toption x 'y'\n\toption log_level 'info\n\toption port '4342'\n"
    );
    assert_eq!(at(&src), (6, 19, K::UnterminatedQuote('\'')));
    let e = err(&format!("{HEAD}\n\n\n\n\toption key \"abc\n"));
    assert_eq!((e.line, e.column), (7, 13));
    assert_eq!(
        e.to_string(),
        "line 7, column 13: unterminated quote (\" opened here)"
    );
    // A quote that a backslash escapes does not close.
    assert_eq!(
        at("config a\n option b \"x\\\"\n").2,
        K::UnterminatedQuote('"')
    );
}

#[test]
fn bad_names() {
    assert_eq!(
        at("config agent 'main'\n\toption listen-port '1'\n"),
        (2, 9, K::InvalidOptionName("listen-port".into()))
    );
    assert_eq!(
        at("config agent 'my agent'\n"),
        (1, 14, K::InvalidSectionName("my agent".into()))
    );
    assert_eq!(
        at("config agent 'main.1'\n"),
        (1, 14, K::InvalidSectionName("main.1".into()))
    );
    assert_eq!(
        at("config 'map server' 'ms1'\n"),
        (1, 8, K::InvalidSectionType("map server".into()))
    );
    assert_eq!(
        at("config agënt\n"),
        (1, 8, K::InvalidSectionType("agënt".into()))
    );
    assert_eq!(
        at("package 'lisp.guard'\n"),
        (1, 9, K::InvalidPackageName("lisp.guard".into()))
    );
    assert_eq!(
        at("config agent\n\tlist 'über' x\n"),
        (2, 7, K::InvalidOptionName("über".into()))
    );
    let e = err("config agent 'main'\n\toption listen-port '1'\n");
    assert_eq!(
        e.to_string(),
        "line 2, column 9: invalid option name \"listen-port\" (allowed: A-Z a-z 0-9 _)"
    );
}

#[test]
fn option_outside_section() {
    assert_eq!(
        at("# lispguard\n\n  option listen_port '4342'\n"),
        (3, 3, K::OptionOutsideSection)
    );
    assert_eq!(
        at("package lispguard\nlist overlay 'x'\n"),
        (2, 1, K::OptionOutsideSection)
    );
}

#[test]
fn stray_tokens() {
    assert_eq!(
        at(&format!("{HEAD}\toption port '4342' '4343'\n")),
        (3, 21, K::UnexpectedArgument("4343".into()))
    );
    assert_eq!(
        at("config agent main extra\n"),
        (1, 19, K::UnexpectedArgument("extra".into()))
    );
    assert_eq!(
        at("package lispguard x\n"),
        (1, 19, K::UnexpectedArgument("x".into()))
    );
    assert_eq!(
        at(&format!("{HEAD}\toptions port '4342'\n")),
        (3, 2, K::InvalidCommand("options".into()))
    );
    assert_eq!(
        at("\n  agent 'main'\n"),
        (2, 3, K::InvalidCommand("agent".into()))
    );
    // The command word is not unquoted.
    assert_eq!(
        at("'config' agent\n"),
        (1, 1, K::InvalidCommand("'config'".into()))
    );
    assert_eq!(
        at("config a ;; option b c\n"),
        (1, 11, K::InvalidCommand(";".into()))
    );
}

#[test]
fn missing_arguments() {
    assert_eq!(at("config\n"), (1, 7, K::MissingSectionType));
    assert_eq!(at("config ''\n"), (1, 8, K::MissingSectionType));
    assert_eq!(
        at("config a\n\toption   # no name\n"),
        (2, 11, K::MissingOptionName)
    );
    assert_eq!(at("package"), (1, 8, K::MissingPackageName));
}

#[test]
fn sections_and_packages() {
    assert_eq!(
        at("config agent 'x'\nconfig map_server 'x'\n"),
        (
            2,
            8,
            K::SectionTypeMismatch {
                name: "x".into(),
                first: "agent".into(),
                second: "map_server".into()
            }
        )
    );
    assert_eq!(at("package a\npackage b\n"), (2, 1, K::DuplicatePackage));
}

#[test]
fn bytes() {
    assert_eq!(at("config a\n\toption b 'x\0y'\n"), (2, 13, K::NulByte));
    let e = parse_bytes(b"config a\n\toption b '\xc3\xa4\xff'\n").unwrap_err();
    assert_eq!((e.line, e.column, e.kind), (2, 13, K::InvalidUtf8));
    assert!(parse_bytes("config a\n\toption b 'ä'\n".as_bytes()).is_ok());
}

#[test]
fn error_trait() {
    let e: Box<dyn std::error::Error> = Box::new(err("option a b"));
    assert_eq!(
        e.to_string(),
        "line 1, column 1: option or list before the first config section"
    );
}
