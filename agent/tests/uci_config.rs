//! The agent's configuration from UCI (/etc/config/lispguard): the sample
//! of the uci crate reads as meant; errors name line and option; unknown
//! options and sections are warnings.

use agent::config::Config;
use std::path::Path;

const KEY: &str = "u/Yt2vgWwN9xKjZtdJDGmBHo0WYSwUlRkmYVn8+/Klc=";

#[test]
fn the_openwrt_sample_reads_as_meant() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../uci/tests/samples/lispguard"
    ));
    let (config, warnings) = Config::load(path).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(config.interface, "wg_lisp");
    assert_eq!(config.control_address.to_string(), "fd00:ca::12");
    assert_eq!(config.overlay.len(), 2);
    assert_eq!(config.map_servers.len(), 2);
    assert_eq!(config.map_servers[0].address, "ms1.lispguard.example.org");
    assert_eq!(config.map_servers[0].port, 51821);
    assert_eq!(config.map_servers[1].key, "backup ms \\ key");
    assert_eq!(config.eids.len(), 2);
    assert_eq!(config.iid(), 1000);
    assert_eq!(
        config.private_key_file,
        Path::new("/etc/lispguard/agent.key")
    );
}

/// Everything the check found in a file it refuses.
fn findings(text: &str) -> Vec<netconf::check::ConfigError> {
    Config::parse_uci(Path::new("lispguard"), text)
        .unwrap_err()
        .0
}

fn uci(body: &str) -> String {
    format!(
        "config agent 'main'\n\toption control_address '100.64.0.2'\n\tlist overlay '10.0.0.0/8'\n{body}\
         config map_server\n\toption address '192.0.2.1'\n\toption public_key '{KEY}'\n\
         \toption control_address '100.64.0.1'\n\toption key 'k'\n\
         config eid\n\toption prefix '10.1.0.0/24'\n\toption iid '1000'\n"
    )
}

#[test]
fn errors_name_the_line_and_the_section_option() {
    let text = uci("\toption listen_port 'abc'\n\toption private_key 'AAAA'\n")
        + "config eid\n\toption prefix 'ten'\n";
    let errors = findings(&text);
    let found: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.option.as_str())).collect();
    assert_eq!(
        found,
        [
            (4, "agent.listen_port"),
            (5, "agent.private_key"),
            // Its iid is 0, the first's 1000.
            (14, "eid[1].iid"),
            (15, "eid[1].prefix")
        ]
    );
    assert_eq!(
        errors[0].to_string(),
        "lispguard:4: agent.listen_port: 'abc' is not a port number (1 to 65535)"
    );
}

#[test]
fn missing_and_inconsistent_settings_are_errors_too() {
    let text = "config agent\n\tlist overlay '10.0.0.0/8'\n";
    let errors = Config::parse_uci(Path::new("lispguard"), text)
        .unwrap_err()
        .0;
    let places: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.option.as_str())).collect();
    assert_eq!(
        places,
        [(0, "map_server"), (0, "eid"), (1, "agent.control_address")]
    );
    let text = uci("") + "config eid\n\toption prefix '10.2.0.0/24'\n\toption iid '7'\n";
    let errors = findings(&text);
    assert_eq!(
        (errors[0].line, errors[0].option.as_str()),
        (14, "eid[1].iid")
    );
}

#[test]
fn unknown_options_and_sections_are_warnings() {
    let text = uci("\toption colour 'blue'\n") + "config tunnel 'x'\n";
    let (_, warnings) = Config::parse_uci(Path::new("lispguard"), &text).unwrap();
    let mut found: Vec<(usize, String)> =
        warnings.iter().map(|w| (w.line, w.to_string())).collect();
    found.reverse();
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(
        found[0],
        (
            13,
            "warning: lispguard:13: unknown section type 'tunnel', ignored".to_string()
        )
    );
    assert_eq!(
        found[1],
        (
            4,
            "warning: lispguard:4: agent.colour: unknown option, ignored".to_string()
        )
    );
}

#[test]
fn warnings_are_shown_next_to_errors() {
    let text = uci("\toption colour 'blue'\n\toption listen_port '0'\n");
    let found = findings(&text);
    let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "warning: lispguard:4: agent.colour: unknown option, ignored",
            "lispguard:5: agent.listen_port: port 0: a port number is 1 to 65535",
        ]
    );
}

#[test]
fn a_broken_map_server_is_not_reported_as_a_missing_one() {
    let text = uci("").replace("\toption key 'k'\n", "\toption key ''\n");
    let found = findings(&text);
    let places: Vec<(usize, &str, &str)> = found
        .iter()
        .map(|e| (e.line, e.option.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(places, [(8, "map_server[0].key", "must not be empty")]);
}

#[test]
fn values_say_what_is_wrong_with_them() {
    let text = uci("\tlist overlay '10.9.0.0/33'\n\toption interface 'lispguard-overlay0'\n")
        .replace("option address '192.0.2.1'", "option address ''")
        .replace("option prefix '10.1.0.0/24'", "option prefix '::/0'");
    let found = findings(&text);
    let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "lispguard:4: agent.overlay: '10.9.0.0/33': prefix length 33 is more than 32",
            "lispguard:5: agent.interface: 'lispguard-overlay0' is 18 bytes, more than the 15 an interface name may have",
            "lispguard:7: map_server[0].address: must not be empty",
            "lispguard:12: eid[0].prefix: ::/0 would claim every address; an EID prefix is a site's own",
        ]
    );
}

#[test]
fn uci_and_toml_treat_an_unknown_option_alike() {
    let text = uci("\toption registr_interval '30'\n");
    let (_, warnings) = Config::parse_uci(Path::new("lispguard"), &text).unwrap();
    assert_eq!(
        warnings[0].to_string(),
        "warning: lispguard:4: agent.registr_interval: unknown option, ignored (did you mean 'register_interval'?)"
    );
}

#[test]
fn metrics_is_a_uci_option_as_in_toml() {
    let text = uci("\toption metrics '127.0.0.1:9101'\n");
    let (config, warnings) = Config::parse_uci(Path::new("lispguard"), &text).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(config.metrics, Some("127.0.0.1:9101".parse().unwrap()));
}
