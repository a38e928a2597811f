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
    assert_eq!(
        config.lisp.state_file,
        Path::new("/var/lib/lispguard/mapserver.db")
    );
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

const HEAD: &str = "control_address = \"100.64.0.1\"\n[wireguard]\nprivate_key_file = \"/k\"\n";

fn site(name: &str, control: &str, eids: &str, extra: &str) -> String {
    format!(
        "[[site]]\nname = \"{name}\"\nkey = \"s\"\npublic_key = \"{}\"\n\
         control_address = \"{control}\"\neids = [{eids}]\n{extra}",
        if name == "a" { KEY_A } else { KEY_B }
    )
}

const KEY_B: &str = "2Bhs2SvHl5bcGxsGgYwqMi3nQRrD3LgOYtrLFGPYbEw=";

fn places(found: &[(usize, String, String)]) -> Vec<(usize, &str)> {
    found.iter().map(|(l, o, _)| (*l, o.as_str())).collect()
}

#[test]
fn syntax_and_type_errors_name_the_option() {
    let found = errors(&format!("{HEAD}listen_port = 70000\n"));
    assert_eq!(places(&found), [(4, "wireguard.listen_port")]);
    let found = errors(&format!("{HEAD}backend = \"bsd\"\n"));
    assert_eq!(places(&found), [(4, "wireguard.backend")]);
    // A syntax error ends the check, and says so.
    let found = errors(&format!("{HEAD}listen_port = = 1\n"));
    assert_eq!((found[0].0, found[0].1.as_str()), (4, "listen_port"));
    assert!(found.last().unwrap().2.contains("not checked"), "{found:?}");
}

#[test]
fn type_errors_in_every_table_are_all_reported() {
    // Today's serde derive stopped at the first of these.
    let text = format!(
        "{HEAD}listen_port = 70000\nbackend = \"bsd\"\n\
         [lisp]\nregistration_ttl = 18446744073709551615\nnegative_ttl = \"x\"\n\
         metrics = \"127.0.0.1:0\"\nrate_limit = -1\n{}\
         [[static]]\neid = \"[1000] 10.9.0.0/24\"\npublic_key = \"{KEY_B}\"\nrloc = \"198.51.100.20\"\nttl = 0\n",
        site("a", "100.64.0.2", "\"[1000] 10.1.0.0/16\"", "accept_more_specifics = \"yes\"\n")
    );
    let found = errors(&text);
    assert_eq!(
        places(&found),
        [
            (4, "wireguard.listen_port"),
            (5, "wireguard.backend"),
            (7, "lisp.registration_ttl"),
            (8, "lisp.negative_ttl"),
            (9, "lisp.metrics"),
            (10, "lisp.rate_limit"),
            (17, "site 'a' accept_more_specifics"),
            (21, "static[0].rloc"),
            (22, "static[0].ttl"),
        ],
        "{found:#?}"
    );
    assert_eq!(
        found[2].2,
        "18446744073709551615 is too large: at most 2147483647"
    );
}

#[test]
fn sites_that_collide_are_errors() {
    let text = format!(
        "{HEAD}{}{}{}{}",
        // The map-server's own control address; a default route.
        site(
            "a",
            "100.64.0.1",
            "\"[1000] 10.1.0.0/16\", \"[1000] 0.0.0.0/0\"",
            ""
        ),
        // The same prefix as a's.
        site("b", "100.64.0.3", "\"[1000] 10.1.0.0/16\"", ""),
        // Holds d's prefix and accepts more specifics: it could take d's.
        site(
            "c",
            "100.64.0.4",
            "\"[7] 10.0.0.0/8\"",
            "accept_more_specifics = true\n"
        )
        .replace(KEY_B, "9Bhs2SvHl5bcGxsGgYwqMi3nQRrD3LgOYtrLFGPYbEw="),
        // Inside c's, and a key of 16 bytes.
        site("d", "100.64.0.5", "\"[7] 10.7.0.0/16\"", "")
            .replace(KEY_B, "AAAAAAAAAAAAAAAAAAAAAA=="),
    );
    let found = errors(&text);
    assert_eq!(
        places(&found),
        [
            (8, "site 'a' control_address"),
            (9, "site 'a' eids"),
            (15, "site 'b' eids"),
            (21, "site 'c' eids"),
            (26, "site 'd' public_key"),
        ],
        "{found:#?}"
    );
    assert_eq!(found[0].2, "also the map-server's own control_address");
    assert!(found[1].2.contains("every address"), "{}", found[1].2);
    assert_eq!(
        found[2].2,
        "[1000] 10.1.0.0/16 is also an EID prefix of site 'a'"
    );
    assert!(
        found[3].2.contains("site 'd''s [7] 10.7.0.0/16"),
        "{}",
        found[3].2
    );
    // Without accept_more_specifics, a prefix inside another site's is
    // fine: the longest match gives its addresses to the inner site.
    let text = format!(
        "{HEAD}{}{}",
        site("a", "100.64.0.2", "\"[1000] 10.0.0.0/8\"", ""),
        site("b", "100.64.0.3", "\"[1000] 10.7.0.0/16\"", ""),
    );
    Config::parse(Path::new("ms.toml"), &text).unwrap();
}

#[test]
fn interface_names_follow_the_rule_the_agent_follows() {
    let found = errors(&format!("{HEAD}interface = \"lispguard-mapserver\"\n"));
    assert_eq!(places(&found), [(4, "wireguard.interface")]);
    assert!(found[0].2.contains("more than the 15"), "{}", found[0].2);
}

#[test]
fn unknown_options_are_warnings_named_like_the_agents() {
    let text = format!(
        "{HEAD}listen_prot = 1\n{}colour = 1\n[lisp]\nstate_file = \"/srv/ms/state.db\"\n",
        site("a", "100.64.0.2", "\"[1000] 10.1.0.0/16\"", "")
    );
    let (config, warnings) = Config::parse_with_warnings(Path::new("ms.toml"), &text).unwrap();
    let found: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        found,
        [
            "warning: ms.toml:4: wireguard.listen_prot: unknown option, ignored (did you mean 'listen_port'?)",
            "warning: ms.toml:11: site 'a' colour: unknown option, ignored",
        ]
    );
    assert_eq!(config.lisp.state_file, Path::new("/srv/ms/state.db"));
    // With an error, the warnings are still shown.
    let found = errors(&text.replace("100.64.0.2", "100.64.0.1"));
    assert_eq!(found.len(), 3, "{found:?}");
}

#[test]
fn run_with_a_bad_interface_name_creates_nothing() {
    use std::os::unix::fs::DirBuilderExt;
    let dir = std::env::temp_dir().join(format!("lispguard-ms-bad-name-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
    let key = dir.join("ms.key");
    let file = dir.join("ms.toml");
    let text = format!(
        "control_address = \"100.64.0.1\"\n[wireguard]\ninterface = \"lispguard-mapserver\"\n\
         private_key_file = \"{}\"\n[lisp]\ncontrol_socket = \"{}\"\nmetrics = \"127.0.0.1:19099\"\n",
        key.display(),
        dir.join("ms.sock").display()
    );
    std::fs::write(&file, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lispguard-mapserver"))
        .args(["run".as_ref(), "-c".as_ref(), file.as_os_str()])
        .output()
        .unwrap();
    let key_created = key.exists();
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // EX_CONFIG: the systemd unit does not restart on it.
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains(":3: wireguard.interface: 'lispguard-mapserver' is 19 bytes"),
        "{stderr}"
    );
    assert!(!key_created, "the key file was created");
}

#[test]
fn check_config_names_every_bad_line_of_the_mappings_file() {
    use std::os::unix::fs::DirBuilderExt;
    let dir = std::env::temp_dir().join(format!("lispguard-ms-mappings-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
    let file = dir.join("ms.toml");
    // Relative: beside the configuration file.
    std::fs::write(
        &file,
        format!("{HEAD}[lisp]\nmappings_file = \"mappings\"\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("mappings"),
        format!(
            "# lab\n[1000] 10.9.0.0/24 {KEY_A} 192.0.2.9:51820\n\n\
             [1000] 10.9.1.0/24 {KEY_A}\n\
             [1000] 10.9.0.0/24 {KEY_A} 192.0.2.10:51820 5\n"
        ),
    )
    .unwrap();
    let check = |args: &[&std::ffi::OsStr]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_lispguard-mapserver"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = check(&["check-config".as_ref(), file.as_os_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // `run` reads the file once and stops at its first bad line, then
    // reports them all, having created nothing.
    let state = dir.join("state.db");
    let text = std::fs::read_to_string(&file).unwrap();
    let run_file = dir.join("run.toml");
    std::fs::write(
        &run_file,
        text.replace(
            "[lisp]\n",
            &format!("[lisp]\nstate_file = \"{}\"\n", state.display()),
        ),
    )
    .unwrap();
    let ran = check(&["run".as_ref(), "-c".as_ref(), run_file.as_os_str()]);
    let run_stderr = String::from_utf8_lossy(&ran.stderr).into_owned();
    let state_created = state.exists();
    // Fixed, the same configuration loads.
    std::fs::write(
        dir.join("mappings"),
        format!("[1000] 10.9.0.0/24 {KEY_A} 192.0.2.9:51820\n"),
    )
    .unwrap();
    let fixed = Config::load(&file);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    assert_eq!(ran.status.code(), Some(78), "EX_CONFIG: no restart helps");
    assert!(!state_created, "the state file was created");
    let mappings = dir.join("mappings");
    for expected in [
        format!("{}:4: lisp.mappings_file: no endpoint", mappings.display()),
        format!(
            "{}:5: lisp.mappings_file: [1000] 10.9.0.0/24 is given twice",
            mappings.display()
        ),
    ] {
        assert!(stderr.contains(&expected), "{expected}\nin:\n{stderr}");
        assert!(
            run_stderr.contains(&expected),
            "{expected}\nin:\n{run_stderr}"
        );
    }
    let fixed = fixed.unwrap();
    assert_eq!(fixed.lisp.mappings_file, Some(mappings));
}

#[test]
fn the_command_line_has_a_version_its_commands_and_a_usage_error() {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_lispguard-mapserver"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("lispguard-mapserver {}\n", env!("CARGO_PKG_VERSION"))
    );
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lispguard-mapserver --help"));
    let out = run(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        help.contains("\nThe lispguard map-server: sites register"),
        "{help}"
    );
    for command in ["run", "check-config", "sites", "lookup", "revoke"] {
        assert!(
            help.contains(&format!("\n  {command} ")),
            "{command}: {help}"
        );
    }
}

#[test]
fn a_plain_lisp_site_has_a_key_and_prefixes_and_no_wireguard_side() {
    let text = "control_address = \"100.64.0.1\"\n\
         [wireguard]\n\
         private_key_file = \"/k\"\n\
         [lisp]\n\
         underlay_listen = \"192.0.2.1:4342\"\n\
         [[site]]\n\
         name = \"x\"\n\
         kind = \"lisp\"\n\
         key = \"s\"\n\
         eids = [\"[1000] 10.8.0.0/16\"]\n";
    let config = Config::parse(Path::new("ms.toml"), text).unwrap();
    assert_eq!(
        config.lisp.underlay_listen,
        Some("192.0.2.1:4342".parse().unwrap())
    );
    assert_eq!(config.sites[0].wireguard, None);
    assert_eq!(config.sites[0].key, b"s");

    let wrong = format!(
        "{text}public_key = \"{KEY_A}\"\ncontrol_address = \"100.64.0.9\"\n\
         [[site]]\nname = \"y\"\nkind = \"bgp\"\nkey = \"t\"\n\
         public_key = \"{KEY_A}\"\ncontrol_address = \"100.64.0.2\"\neids = [\"10.9.0.0/16\"]\n"
    );
    let found = errors(&wrong);
    let lines: Vec<(usize, &str)> = found.iter().map(|(l, o, _)| (*l, o.as_str())).collect();
    assert_eq!(
        lines,
        [
            (11, "site 'x' public_key"),
            (12, "site 'x' control_address"),
            (15, "site 'y' kind"),
        ]
    );
    assert!(found[0].2.contains("no WireGuard side"), "{}", found[0].2);
    assert!(found[2].2.contains("\"lisp\""), "{}", found[2].2);
}

#[test]
fn a_plain_lisp_site_without_the_underlay_listener_is_a_warning() {
    let text = "control_address = \"100.64.0.1\"\n[wireguard]\nprivate_key_file = \"/k\"\n\
         [[site]]\nname = \"x\"\nkind = \"lisp\"\nkey = \"s\"\neids = [\"10.8.0.0/16\"]\n";
    let (_, warnings) = Config::parse_with_warnings(Path::new("ms.toml"), text).unwrap();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].line, 6);
    assert!(warnings[0].message.contains("underlay_listen"));
}

#[test]
fn a_relay_needs_an_address_and_two_ports_apart_from_the_map_servers() {
    let text = format!("{HEAD}[relay]\naddress = \"192.0.2.1\"\nports = \"40000-40999\"\n");
    let config = Config::parse(Path::new("ms.toml"), &text).unwrap();
    let relay = config.relay.unwrap();
    assert_eq!(
        relay.address,
        "192.0.2.1".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(relay.ports, 40000..=40999);
    assert_eq!(relay.idle, std::time::Duration::from_secs(90));
    let found = errors(&format!(
        "{HEAD}[relay]\nports = \"51000-52000\"\nidle = \"long\"\n"
    ));
    assert_eq!(
        places(&found),
        [(4, "relay.address"), (5, "relay.ports"), (6, "relay.idle")]
    );
    assert!(found[1].2.contains("port 51820"), "{}", found[1].2);
    for wrong in ["40000", "40001-40000", "40000-40000", "0-10", "a-b"] {
        let found = errors(&format!(
            "{HEAD}[relay]\naddress = \"192.0.2.1\"\nports = \"{wrong}\"\n"
        ));
        assert_eq!(places(&found), [(6, "relay.ports")], "{wrong}");
    }
}

#[test]
fn enrolment_needs_a_control_pool_and_warns_without_an_underlay_listener() {
    let text = format!("{HEAD}[enrolment]\ncontrol_pool = \"100.64.1.0/24\"\n");
    let (config, warnings) = Config::parse_with_warnings(Path::new("ms.toml"), &text).unwrap();
    assert_eq!(
        config.enrolment.unwrap().control_pool.to_string(),
        "100.64.1.0/24"
    );
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].message.contains("underlay_listen"),
        "{}",
        warnings[0].message
    );
    let found = errors(&format!(
        "{HEAD}[enrolment]\ncontrol_pool = \"100.64.1.7\"\n"
    ));
    // With the warning about the underlay listener.
    assert_eq!(
        places(&found),
        [(4, "enrolment"), (5, "enrolment.control_pool")]
    );
    let found = errors(&format!("{HEAD}[enrolment]\n"));
    assert_eq!(
        places(&found),
        [(4, "enrolment"), (4, "enrolment.control_pool")]
    );
}

#[test]
fn a_group_of_map_servers_needs_its_secret_and_names_each_other_whole() {
    let pool = "[enrolment]\ncontrol_pool = \"100.64.1.0/24\"\n";
    let secret = "group_secret = \"CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\"\n";
    let other = "\"192.0.2.2:4342 BgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgY=\"";
    let text = format!("{HEAD}{pool}{secret}group = [{other}]\n");
    let config = Config::parse(Path::new("ms.toml"), &text).unwrap();
    let enrolment = config.enrolment.unwrap();
    assert_eq!(enrolment.group_secret, Some([9; 32]));
    assert_eq!(
        enrolment.group[0].address,
        "192.0.2.2:4342".parse().unwrap()
    );
    assert_eq!(enrolment.group[0].public_key, [6; 32]);
    let found = errors(&format!("{HEAD}{pool}group = [{other}]\n"));
    assert!(found[1].2.contains("needs group_secret"), "{found:?}");
    let found = errors(&format!(
        "{HEAD}{pool}{secret}group = [\"192.0.2.2 BgYG\", {other}]\n"
    ));
    assert_eq!(places(&found)[1], (7, "enrolment.group"));
    assert!(found[1].2.contains("ADDRESS:PORT PUBLIC_KEY"), "{found:?}");
    let found = errors(&format!("{HEAD}{pool}group_secret = \"short\"\n"));
    assert!(found[1].2.contains("wg genkey"), "{found:?}");
}

#[test]
fn a_policy_names_sites_and_groups_and_needs_enrolment() {
    let pool = "[lisp]\nunderlay_listen = \"192.0.2.1:4342\"\n[enrolment]\ncontrol_pool = \"100.64.1.0/24\"\n";
    let a = site(
        "a",
        "100.64.0.2",
        "\"[1000] 10.1.0.0/24\"",
        "may_resolve = [\"group:robots\"]\n",
    );
    let policy = |list: &str| format!("[[policy]]\ngroup = \"robots\"\nmay_resolve = [{list}]\n");
    let text = format!("{HEAD}{pool}{a}{}", policy("\"a\", \"group:robots\""));
    let config = Config::parse(Path::new("ms.toml"), &text).unwrap();
    let policies = config.enrolment.unwrap().policies;
    assert_eq!(policies[0].group, "robots");
    assert_eq!(policies[0].may_resolve, ["a", "group:robots"]);
    assert_eq!(
        config.sites[0].may_resolve.as_deref(),
        Some(&["group:robots".to_string()][..])
    );
    // A site no one configured, a group no token can name, the same group
    // twice, and a policy with no enrolment: each said where.
    let found = errors(&format!("{HEAD}{pool}{a}{}", policy("\"b\"")));
    assert_eq!(places(&found), [(17, "policy[0].may_resolve")]);
    assert!(found[0].2.contains("group:NAME"), "{found:?}");
    let found = errors(&format!("{HEAD}{pool}{a}{}", policy("\"group:a b\"")));
    assert!(found[0].2.contains("group 'a b'"), "{found:?}");
    let twice = policy("\"a\"");
    let found = errors(&format!("{HEAD}{pool}{a}{twice}{twice}"));
    assert_eq!(places(&found), [(19, "policy[1].group")]);
    let found = errors(&format!("{HEAD}{a}{twice}"));
    assert_eq!(places(&found), [(11, "policy")]);
    assert!(found[0].2.contains("needs [enrolment]"), "{found:?}");
}
