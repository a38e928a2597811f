//! `check-config`: every error names file, line and option; defaults are
//! what the documentation says.

use mapserver::config::{Backend, Config, ConfigError};
use std::path::Path;

const KEY_A: &str = "u/Yt2vgWwN9xKjZtdJDGmBHo0WYSwUlRkmYVn8+/Klc=";

fn errors(text: &str) -> Vec<(usize, String, String)> {
    let errors = Config::parse(Path::new("ms.toml"), text).unwrap_err();
    errors
        .0
        .into_iter()
        .map(
            |ConfigError {
                 line,
                 option,
                 message,
                 ..
             }| (line, option, message),
        )
        .collect()
}

#[test]
fn a_minimal_file_gets_the_documented_defaults() {
    let text = format!(
        "control_address = \"100.64.0.1\"\n[wireguard]\nprivate_key_file = \"/k\"\n\
         [[site]]\nname = \"a\"\nkey = \"s\"\npublic_key = \"{KEY_A}\"\n\
         control_address = \"100.64.0.2\"\neids = [\"[1000] 10.1.0.0/16\"]\n"
    );
    let config = Config::parse(Path::new("ms.toml"), &text).unwrap();
    assert_eq!(config.wireguard.interface, "lgms0");
    assert_eq!(config.wireguard.backend, Backend::Kernel);
    assert_eq!(config.wireguard.listen_port, 51820);
    assert_eq!(config.listen(), "100.64.0.1:4342".parse().unwrap());
    assert_eq!(config.lisp.registration_ttl, 180);
    assert_eq!(config.lisp.metrics, "127.0.0.1:9090".parse().unwrap());
    assert_eq!(config.sites[0].eids[0].to_string(), "[1000] 10.1.0.0/16");
    assert!(!config.sites[0].accept_more_specifics);
}

#[test]
fn every_error_is_reported_with_its_line_and_option() {
    let text = format!(
        "control_address = \"100.64.0.1\"\n\
         [wireguard]\n\
         private_key_file = \"/k\"\n\
         [[site]]\n\
         name = \"a\"\n\
         key = \"\"\n\
         public_key = \"short\"\n\
         control_address = \"100.64.0.2\"\n\
         eids = [\"[1000] 10.1.0.1/16\"]\n\
         may_resolve = [\"nobody\"]\n\
         [[site]]\n\
         name = \"a\"\n\
         key = \"s\"\n\
         public_key = \"{KEY_A}\"\n\
         control_address = \"100.64.0.2\"\n\
         eids = [\"[1000] 10.2.0.0/16\"]\n"
    );
    let found = errors(&text);
    let lines: Vec<(usize, &str)> = found.iter().map(|(l, o, _)| (*l, o.as_str())).collect();
    assert_eq!(
        lines,
        [
            (6, "site 'a' key"),
            (7, "site 'a' public_key"),
            (9, "site 'a' eids"),
            (10, "site 'a' may_resolve"),
            (12, "site name"),
            (15, "site 'a' control_address"),
        ]
    );
    assert!(found[2].2.contains("not an EID prefix"), "{}", found[2].2);
}

#[test]
fn syntax_and_type_errors_name_the_option() {
    let found = errors("control_address = \"100.64.0.1\"\n[wireguard]\nprivate_key_file = \"/k\"\nlisten_port = 70000\n");
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].0, found[0].1.as_str()), (4, "listen_port"));
    let found = errors("control_address = \"100.64.0.1\"\n[wireguard]\nprivate_key_file = \"/k\"\nbackend = \"bsd\"\n");
    assert_eq!((found[0].0, found[0].1.as_str()), (4, "backend"));
    let found = errors(
        "control_address = \"100.64.0.1\"\n[wireguard]\nprivate_key_file = \"/k\"\ncolour = 1\n",
    );
    assert_eq!(found[0].0, 4);
    assert!(found[0].2.contains("unknown field"), "{}", found[0].2);
}
