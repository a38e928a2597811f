//! Properties: what the writer writes reads back equal, and no input
//! makes the parser panic.

use proptest::collection::vec;
use proptest::prelude::*;
use std::collections::HashSet;
use uci::{parse, parse_bytes, write, Config, OptionKind, Section, UciOption};

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_]{1,10}"
}

/// Values lean on the characters that quoting has to get right.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[^\\x00]{0,12}",
        vec(
            prop::sample::select(vec![
                "'", "\"", "\\", "#", ";", " ", "\t", "\n", "\r", "\r\n", "'\\''", "a", "ä", "",
            ]),
            0..10
        )
        .prop_map(|parts| parts.concat()),
    ]
}

fn option() -> impl Strategy<Value = UciOption> {
    (any::<bool>(), name(), value()).prop_map(|(list, name, value)| UciOption {
        kind: if list {
            OptionKind::List
        } else {
            OptionKind::Option
        },
        name,
        value,
        line: 0,
    })
}

fn section() -> impl Strategy<Value = Section> {
    (
        "[!-~]{1,10}",
        proptest::option::of(name()),
        vec(option(), 0..6),
    )
        .prop_map(|(kind, name, options)| Section {
            kind,
            name,
            options,
            line: 0,
        })
}

/// Configs as a parser can return them: section names are unique.
fn config() -> impl Strategy<Value = Config> {
    (
        proptest::option::of("[A-Za-z0-9_-]{1,10}"),
        vec(section(), 0..6),
    )
        .prop_map(|(package, mut sections)| {
            let mut seen = HashSet::new();
            for (i, s) in sections.iter_mut().enumerate() {
                if let Some(n) = &mut s.name {
                    if !seen.insert(n.clone()) {
                        n.push_str(&format!("_{i}"));
                        seen.insert(n.clone());
                    }
                }
            }
            Config { package, sections }
        })
}

/// Text made of UCI's own tokens, to get deep into the grammar.
fn uci_like() -> impl Strategy<Value = String> {
    vec(
        prop::sample::select(vec![
            "package", "config", "option", "list", "c", "o", "l", "p", " ", " ", "\t", "\n", "\n",
            "\r\n", "'", "\"", "\\", "#", ";", "agent", "main", "x_1", "a-b", "ä", "''", "'v a'",
            "\"q\"", "\\\n",
        ]),
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn write_then_parse_is_identity(c in config()) {
        let text = write(&c).unwrap();
        let back = parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(back, c);
    }

    #[test]
    fn parsed_configs_write_and_read_back(src in uci_like()) {
        if let Ok(c) = parse(&src) {
            let text = write(&c).unwrap();
            prop_assert_eq!(parse(&text).unwrap(), c);
        }
    }

    #[test]
    fn parser_never_panics_on_strings(src in "(?s).{0,200}") {
        let _ = parse(&src);
    }

    #[test]
    fn parser_never_panics_on_bytes(src in vec(any::<u8>(), 0..200)) {
        let _ = parse_bytes(&src);
    }
}
