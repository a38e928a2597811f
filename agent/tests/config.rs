//! The agent's TOML configuration: defaults, and errors that name the
//! line and option — in the right one of several sections — all of them,
//! not only the first.

use agent::config::{Backend, Config, ConfigError};
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

fn errors(text: &str) -> Vec<ConfigError> {
    Config::parse_toml(Path::new("a.toml"), text).unwrap_err().0
}

fn places(found: &[ConfigError]) -> Vec<(usize, &str)> {
    found.iter().map(|e| (e.line, e.option.as_str())).collect()
}

#[test]
fn defaults_are_the_documented_ones() {
    let (config, warnings) = Config::parse_toml(Path::new("a.toml"), &base("")).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(config.interface, "lg0");
    assert_eq!(config.tun, "lgtun0");
    assert_eq!(config.backend, Backend::Kernel);
    assert_eq!(config.listen_port, 51820);
    assert_eq!(config.register_interval, 60);
    assert_eq!(config.map_servers[0].port, 51820);
    assert_eq!(config.iid(), 1000);
    assert_eq!(config.metrics, None, "metrics are off by default");
}

#[test]
fn metrics_on_loopback_are_quiet_elsewhere_a_warning() {
    let (config, warnings) =
        Config::parse_toml(Path::new("a.toml"), &base("metrics = \"127.0.0.1:9101\"")).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(config.metrics, Some("127.0.0.1:9101".parse().unwrap()));
    let (config, warnings) =
        Config::parse_toml(Path::new("a.toml"), &base("metrics = \"0.0.0.0:9101\"")).unwrap();
    assert_eq!(config.metrics, Some("0.0.0.0:9101".parse().unwrap()));
    assert_eq!(
        warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
        ["warning: a.toml:3: metrics: not a loopback address: anyone who reaches it reads the metrics (no authentication)"]
    );
    let found = errors(&base("metrics = \"127.0.0.1\""));
    assert_eq!(places(&found), [(3, "metrics")], "{found:?}");
}

#[test]
fn errors_point_at_the_section_they_are_in() {
    let text = format!(
        "{}[[map_server]]\naddress = \"192.0.2.2\"\npublic_key = \"nope\"\n\
         control_address = \"100.64.0.9\"\nkey = \"\"\n\
         [[eid]]\nprefix = \"10.1.1.0/24\"\niid = 7\n",
        base("register_interval = 0")
    );
    let found = errors(&text);
    assert_eq!(
        places(&found),
        [
            (3, "register_interval"),
            (14, "map_server[1].public_key"),
            (16, "map_server[1].key"),
            (19, "eid[1].iid"),
        ]
    );
    assert_eq!(
        found[1].to_string(),
        "a.toml:14: map_server[1].public_key: 'nope' is not a WireGuard key (32 bytes in base64)"
    );
}

#[test]
fn type_errors_of_every_option_are_all_reported() {
    // Today's serde derive stopped at the first of these.
    let text = base("listen_port = \"x\"\nregister_interval = true\ntun = 5")
        .replace("iid = 1000", "iid = -1")
        .replace("key = \"k\"", "key = [1]");
    let found = errors(&text);
    assert_eq!(
        places(&found),
        [
            (3, "listen_port"),
            (4, "register_interval"),
            (5, "tun"),
            (10, "map_server[0].key"),
            (13, "eid[0].iid"),
        ],
        "{found:#?}"
    );
    assert_eq!(
        found[0].to_string(),
        "a.toml:3: listen_port: expected a port number (1 to 65535), found a string"
    );
}

#[test]
fn a_syntax_error_says_the_rest_was_not_checked() {
    let found = errors(&base("listen_port = = 1"));
    assert_eq!(
        (found[0].line, found[0].option.as_str()),
        (3, "listen_port")
    );
    let last = found.last().unwrap();
    assert!(last.message.contains("not checked"), "{last}");
}

#[test]
fn values_are_checked_against_what_the_system_accepts() {
    let text = base(
        "interface = \"a-very-long-name0\"\ntun = \"lg tun\"\nlisten_port = 0\n\
         register_interval = 18446744073709551615\nrecord_ttl = 99999999999",
    )
    .replace("10.1.0.0/24", "0.0.0.0/0")
    .replace("10.0.0.0/8", "10.0.0.0/33")
    .replace("address = \"192.0.2.1\"", "address = \"\"")
    .replace(
        "control_address = \"100.64.0.1\"",
        "control_address = \"100.64.0.2\"",
    );
    let found = errors(&text);
    assert_eq!(
        places(&found),
        [
            (2, "overlay"),
            (3, "interface"),
            (4, "tun"),
            (5, "listen_port"),
            (6, "register_interval"),
            (7, "record_ttl"),
            (9, "map_server[0].address"),
            (11, "map_server[0].control_address"),
            (14, "eid[0].prefix"),
        ],
        "{found:#?}"
    );
    let messages: Vec<&str> = found.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages[0],
        "'10.0.0.0/33': prefix length 33 is more than 32"
    );
    assert!(messages[1].contains("more than the 15"), "{}", messages[1]);
    assert!(messages[4].contains("too large"), "{}", messages[4]);
    assert_eq!(messages[6], "must not be empty");
    assert!(messages[8].contains("every address"), "{}", messages[8]);
}

#[test]
fn unknown_options_are_warnings_with_a_suggestion() {
    let text = base("listen_prot = 51821\ncolour = \"blue\"\n[extra]\nx = 1");
    let (_, warnings) = Config::parse_toml(Path::new("a.toml"), &text).unwrap();
    let found: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        found,
        [
            "warning: a.toml:3: listen_prot: unknown option, ignored (did you mean 'listen_port'?)",
            "warning: a.toml:4: colour: unknown option, ignored",
            "warning: a.toml:5: unknown section type 'extra', ignored",
        ]
    );
}

#[test]
fn warnings_are_shown_with_errors() {
    let found = errors(&base("colour = 1\nlisten_port = 0"));
    assert_eq!(places(&found), [(3, "colour"), (4, "listen_port")]);
    assert!(!found[0].is_error());
    assert!(found[1].is_error());
}

/// A directory of its own (0700), removed at the end.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        use std::os::unix::fs::DirBuilderExt;
        let path = std::env::temp_dir().join(format!("lispguard-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn lispguard(args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_lispguard"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn run_with_a_bad_interface_name_creates_nothing() {
    let dir = TempDir::new("run-bad-name");
    let key = dir.0.join("agent.key");
    let file = dir.0.join("agent.toml");
    let text = base(&format!(
        "interface = \"lispguard-overlay\"\nprivate_key_file = \"{}\"\nstatus_socket = \"{}\"",
        key.display(),
        dir.0.join("status.sock").display()
    ));
    std::fs::write(&file, text).unwrap();
    let out = lispguard(&["run".as_ref(), "-c".as_ref(), file.as_os_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // EX_CONFIG: the systemd unit does not restart on it.
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains(":3: interface: 'lispguard-overlay' is 17 bytes, more than the 15"),
        "{stderr}"
    );
    assert!(!key.exists(), "the key file was created");
}

#[test]
fn check_config_prints_errors_and_warnings_and_exits_by_errors_alone() {
    let dir = TempDir::new("check-config");
    let file = dir.0.join("agent.toml");
    std::fs::write(&file, base("colour = 1")).unwrap();
    let out = lispguard(&["check-config".as_ref(), file.as_os_str()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.starts_with("warning: "), "{stdout}");
    assert!(
        stdout.contains(":3: colour: unknown option, ignored"),
        "{stdout}"
    );
    std::fs::write(&file, base("colour = 1\nlisten_port = 0\nrecord_ttl = 0")).unwrap();
    let out = lispguard(&["check-config".as_ref(), file.as_os_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr.lines().count(), 3, "{stderr}");
    assert!(stderr.contains("warning: "), "{stderr}");
    assert!(stderr.contains(":4: listen_port: port 0"), "{stderr}");
    assert!(
        stderr.contains(":5: record_ttl: 0: must be at least 1"),
        "{stderr}"
    );
}

#[test]
fn version_is_printed_and_a_missing_command_is_a_usage_error() {
    let out = lispguard(&["--version".as_ref()]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("lispguard {}\n", env!("CARGO_PKG_VERSION"))
    );
    let out = lispguard(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lispguard --help"));
    let out = lispguard(&["--help".as_ref()]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        help.contains("\nlispguard: WireGuard peers on demand."),
        "{help}"
    );
    for command in ["run", "status", "check-config", "genkey", "pubkey"] {
        assert!(
            help.contains(&format!("\n  {command} ")),
            "{command}: {help}"
        );
    }
}
