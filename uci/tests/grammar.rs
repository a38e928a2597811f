//! libuci's reading rules (file.c, list.c), one test per rule.

use uci::{parse, write, Config, OptionKind, Section, UciOption, Value};

fn one(src: &str) -> Section {
    let c = parse(src).unwrap_or_else(|e| panic!("{src:?}: {e}"));
    assert_eq!(c.sections.len(), 1, "{c:?}");
    c.sections.into_iter().next().unwrap()
}

/// The value of option `v` in a one-section file.
fn value(option_line: &str) -> String {
    let src = format!("config t\n{option_line}\n");
    one(&src)
        .option("v")
        .unwrap_or_else(|| panic!("{src:?}"))
        .to_owned()
}

#[test]
fn quoting_styles() {
    assert_eq!(value("option v 'a b'"), "a b");
    assert_eq!(value("option v \"a b\""), "a b");
    assert_eq!(value("option v ab"), "ab");
    // Adjacent pieces concatenate into one word.
    assert_eq!(value("option v 'a'\"b\"c"), "abc");
    assert_eq!(value("option v a'b c'd"), "ab cd");
    // Names may be quoted too.
    assert_eq!(value("option 'v' 'x'"), "x");
    let s = one("config 'type' 'name'\n\toption \"v\" x\n");
    assert_eq!((s.kind.as_str(), s.name.as_deref()), ("type", Some("name")));
}

#[test]
fn escapes() {
    // No escapes inside single quotes: the backslash is kept.
    assert_eq!(value(r"option v 'a\nb\'"), r"a\nb\");
    // Elsewhere a backslash takes the next character literally; there is
    // no \n or \t decoding.
    assert_eq!(value(r#"option v "a\"b\\c\nd""#), r#"a"b\cnd"#);
    assert_eq!(value(r"option v a\ b\#c\;d\'e"), "a b#c;d'e");
    // The writer's (and libuci's export) quote escape.
    assert_eq!(value(r"option v 'it'\''s'"), "it's");
    // Special characters are literal in quotes.
    assert_eq!(value("option v '#not; a comment\"'"), "#not; a comment\"");
    assert_eq!(value("option v \"#x;'y\""), "#x;'y");
}

#[test]
fn comments_blank_lines_and_indentation() {
    let s = one(
        "# head\n\n   \t\n  config t 'n' # trailing\n\t # indented comment\n    option v x#y z\n\
         option w 'q' #c\n",
    );
    assert_eq!(s.name.as_deref(), Some("n"));
    assert_eq!(s.option("v"), Some("x"));
    assert_eq!(s.option("w"), Some("q"));
    assert_eq!(s.line, 4);
    assert_eq!(s.options.iter().map(|o| o.line).collect::<Vec<_>>(), [6, 7]);
    // A file of nothing.
    assert_eq!(parse("").unwrap(), Config::default());
    assert_eq!(parse("\n# only comments\n\n").unwrap(), Config::default());
}

#[test]
fn multi_line_values() {
    // Quoted strings run on over newlines and keep them.
    let s = one("config t\n\toption v 'first\nsecond'\n\toption w \"a\n\tb\"\n\toption z 1\n");
    assert_eq!(s.option("v"), Some("first\nsecond"));
    assert_eq!(s.option("w"), Some("a\n\tb"));
    assert_eq!(s.entries("z").next().unwrap().line, 6);
}

#[test]
fn line_continuation() {
    // A backslash at the end of a line joins the next line on, outside
    // single quotes.
    let s = one(
        "config t\n\toption v abc\\\ndef\n\toption w \"abc\\\ndef\"\n\toption x 'abc\\\ndef'\n",
    );
    assert_eq!(s.option("v"), Some("abcdef"));
    assert_eq!(s.option("w"), Some("abcdef"));
    assert_eq!(s.option("x"), Some("abc\\\ndef"));
    // CRLF too.
    assert_eq!(value("option v abc\\\r\ndef"), "abcdef");
    // The continued line's indentation ends the word, as in libuci.
    assert!(parse("config t\n\toption v \\\n\t  x\n").is_err());
    // A backslash at the very end of the file ends the word.
    assert_eq!(
        parse("config t\n option v ab\\").unwrap().sections[0].option("v"),
        Some("ab")
    );
}

#[test]
fn crlf_files() {
    let s = one("config t 'n'\r\n\toption v 'x'\r\n\toption w y\r\n");
    assert_eq!(s.name.as_deref(), Some("n"));
    assert_eq!(s.option("v"), Some("x"));
    assert_eq!(s.option("w"), Some("y"));
}

#[test]
fn one_letter_commands_and_semicolons() {
    let c = parse("p net\nc interface 'lan'\no proto static\nl dns 1.1.1.1\n").unwrap();
    assert_eq!(c.package.as_deref(), Some("net"));
    let s = &c.sections[0];
    assert_eq!(s.option("proto"), Some("static"));
    assert_eq!(s.list("dns"), ["1.1.1.1"]);

    // `;` ends a command. libuci agrees when spaces surround it and every
    // argument is given; elsewhere it is erratic (`config f;option g h`
    // drops `option g h`), and we take the simple rule.
    let c = parse("config a 'x' ; option b c ; list d e ;\nconfig f;option g h # c ; option i j\n")
        .unwrap();
    assert_eq!(c.sections.len(), 2);
    assert_eq!(c.sections[0].option("b"), Some("c"));
    assert_eq!(c.sections[0].list("d"), ["e"]);
    assert_eq!(c.sections[1].option("g"), Some("h"));
    assert_eq!(c.sections[1].option("i"), None);
}

#[test]
fn anonymous_sections() {
    let c = parse("config rule\nconfig rule ''\nconfig rule 'named'\n").unwrap();
    let names: Vec<_> = c.sections.iter().map(|s| s.name.clone()).collect();
    assert_eq!(names, [None, None, Some("named".to_owned())]);
    // Types may hold more than names do.
    let s = one("config wifi-iface.v2+x\n");
    assert_eq!(s.kind, "wifi-iface.v2+x");
}

#[test]
fn later_option_replaces_earlier() {
    let s = one("config t\n\toption port 1\n\toption port 2\n\toption port ''\n");
    // Every line is kept; the value is libuci's: the last non-empty one
    // (libuci's loader ignores `option NAME ''`).
    assert_eq!(s.entries("port").count(), 3);
    assert_eq!(s.option("port"), Some("2"));
    match s.get("port") {
        Some(Value::Single(o)) => assert_eq!(o.line, 3),
        other => panic!("{other:?}"),
    }
    assert_eq!(one("config t\n\toption port ''\n").get("port"), None);
    assert_eq!(one("config t\n\toption port\n").get("port"), None);
}

#[test]
fn lists_append_and_absorb_options() {
    let s = one("config t\n\tlist a 1\n\tlist a ''\n\tlist a 3\n\tlist b\n");
    // Empty list items are kept, as libuci's uci_add_list keeps them.
    assert_eq!(s.list("a"), ["1", "", "3"]);
    assert_eq!(s.list("b"), [""]);
    assert_eq!(s.option("a"), None);
    // `list` after `option` makes the option the list's first item.
    let s = one("config t\n\toption a 1\n\tlist a 2\n");
    assert_eq!(s.list("a"), ["1", "2"]);
    // `option` after `list` replaces the whole list.
    let s = one("config t\n\tlist a 1\n\tlist a 2\n\toption a 3\n");
    assert_eq!(s.option("a"), Some("3"));
    assert_eq!(s.list("a"), ["3"]);
    assert_eq!(s.list("missing"), Vec::<&str>::new());
}

#[test]
fn repeated_named_section_is_merged() {
    let c = parse(
        "config t 'x'\n\toption a 1\nconfig u 'y'\nconfig t 'x'\n\toption a 2\n\toption b 3\n",
    )
    .unwrap();
    assert_eq!(c.sections.len(), 2);
    let x = c.section("x").unwrap();
    assert_eq!(x.line, 1);
    assert_eq!(x.option("a"), Some("2"));
    assert_eq!(x.option("b"), Some("3"));
    assert_eq!(
        x.options.iter().map(|o| o.line).collect::<Vec<_>>(),
        [2, 5, 6]
    );
}

#[test]
fn writer_layout() {
    let mut agent = Section::new("agent", Some("main".into()));
    agent.set("listen_port", "4342");
    agent.add_list("overlay", "fd00:1::/48");
    agent.add_list("overlay", "10.77.0.0/16");
    agent.set("log_level", "debug");
    agent.set("listen_port", "4343");
    let mut eid = Section::new("eid", None);
    eid.options.push(UciOption {
        kind: OptionKind::Option,
        name: "note".into(),
        value: "it's \"quoted\"\nand\\more".into(),
        line: 0,
    });
    let c = Config {
        package: Some("lispguard".into()),
        sections: vec![agent, eid, Section::new("we#ird;'type", None)],
    };
    let text = write(&c).unwrap();
    assert_eq!(
        text,
        "package lispguard\n\
         \n\
         config agent 'main'\n\
         \toption listen_port '4343'\n\
         \tlist overlay 'fd00:1::/48'\n\
         \tlist overlay '10.77.0.0/16'\n\
         \toption log_level 'debug'\n\
         \n\
         config eid\n\
         \toption note 'it'\\''s \"quoted\"\nand\\more'\n\
         \n\
         config 'we#ird;'\\''type'\n\
         \n"
    );
    assert_eq!(parse(&text).unwrap(), c);
}

#[test]
fn writer_refuses_what_cannot_read_back() {
    use uci::WriteError as W;
    let bad_option = |name: &str, value: &str| {
        let mut s = Section::new("t", None);
        s.set(name, value);
        write(&Config {
            package: None,
            sections: vec![s],
        })
    };
    assert_eq!(
        bad_option("a-b", "x"),
        Err(W::InvalidOptionName("a-b".into()))
    );
    assert_eq!(
        bad_option("a", "x\0"),
        Err(W::NulInValue { option: "a".into() })
    );
    let two = Config {
        package: None,
        sections: vec![
            Section::new("t", Some("x".into())),
            Section::new("t", Some("x".into())),
        ],
    };
    assert_eq!(write(&two), Err(W::DuplicateSectionName("x".into())));
    let empty_name = Config {
        package: None,
        sections: vec![Section::new("t", Some(String::new()))],
    };
    assert_eq!(
        write(&empty_name),
        Err(W::InvalidSectionName(String::new()))
    );
    let spaced_type = Config {
        package: None,
        sections: vec![Section::new("a b", None)],
    };
    assert_eq!(
        write(&spaced_type),
        Err(W::InvalidSectionType("a b".into()))
    );
    let package = Config {
        package: Some("a.b".into()),
        sections: vec![],
    };
    assert_eq!(write(&package), Err(W::InvalidPackageName("a.b".into())));
}
