//! The agent's TOML configuration: defaults, and errors that name the
//! line and option — in the right one of several sections.

use agent::config::{Backend, Config};
use std::path::Path;

const KEY: &str = "u/Yt2vgWwN9xKjZtdJDGmBHo0WYSwUlRkmYVn8+/Klc=";

fn base(extra: &str) -> String {
    format!(
        "control_address = \"100.64.0.2\"\noverlay = [\"10.0.0.0/8\"]\n{extra}\n\
         [[map_server]]\naddress = \"192.0.2.1\"\npublic_key = \"{KEY}\"\n\
         control_address = \"100.64.0.1\"\nkey = \"k\"\n\
         [[eid]]\nprefix = \"10.1.0.0/24\"\niid = 1000\n"
    )
}

#[test]
fn defaults_are_the_documented_ones() {
    let config = Config::parse_toml(Path::new("a.toml"), &base("")).unwrap();
    assert_eq!(config.interface, "lg0");
    assert_eq!(config.tun, "lgtun0");
    assert_eq!(config.backend, Backend::Kernel);
    assert_eq!(config.listen_port, 51820);
    assert_eq!(config.register_interval, 60);
    assert_eq!(config.map_servers[0].port, 51820);
    assert_eq!(config.iid(), 1000);
}

#[test]
fn errors_point_at_the_section_they_are_in() {
    let text = format!(
        "{}[[map_server]]\naddress = \"192.0.2.2\"\npublic_key = \"nope\"\n\
         control_address = \"100.64.0.9\"\nkey = \"\"\n\
         [[eid]]\nprefix = \"10.1.1.0/24\"\niid = 7\n",
        base("register_interval = 0")
    );
    let errors = Config::parse_toml(Path::new("a.toml"), &text)
        .unwrap_err()
        .0;
    let found: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.option.as_str())).collect();
    assert_eq!(
        found,
        [
            (14, "map_server[1].public_key"),
            (16, "map_server[1].key"),
            (19, "eid[1].iid"),
            (3, "register_interval"),
        ]
    );
    assert_eq!(
        errors[0].to_string(),
        "a.toml:14: map_server[1].public_key: 'nope' is not a base64 WireGuard key"
    );
}

#[test]
fn type_errors_name_file_line_and_option() {
    let text = base("listen_port = \"x\"");
    let errors = Config::parse_toml(Path::new("a.toml"), &text)
        .unwrap_err()
        .0;
    assert_eq!(
        (errors[0].line, errors[0].option.as_str()),
        (3, "listen_port")
    );
}
