//! Enrolment tokens through the CLI, against the map-server running as a
//! process in a network namespace of its own (wireguard-go for its
//! interface): create, list, revoke, list again; a restart keeps them; a
//! map-server without an underlay listener issues none.
//!
//! Needs root, `ip` (iproute2, for the namespace only) and wireguard-go.

mod common;

use common::Running;
use mapserver::config::format_key;
use mapserver::token::Token;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A namespace with its loopback up and a directory for the key, the
/// configuration and the state file (0700); both removed on drop.
struct Place {
    ns: String,
    dir: PathBuf,
}

impl Place {
    fn new() -> Place {
        use std::os::unix::fs::DirBuilderExt;
        let tag = std::process::id();
        let place = Place {
            ns: format!("lgt-tok-{tag}"),
            dir: std::env::temp_dir().join(format!("lgt-tok-{tag}")),
        };
        let _ = std::fs::remove_dir_all(&place.dir);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&place.dir)
            .expect("the test's directory");
        for args in [
            vec!["netns", "add", &place.ns],
            vec!["-n", &place.ns, "link", "set", "lo", "up"],
        ] {
            let out = Command::new("ip").args(&args).output().expect("ip");
            assert!(out.status.success(), "ip {args:?}: {out:?}");
        }
        place
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("ms.sock")
    }

    /// Writes the configuration, with an underlay listener and enrolment
    /// or without.
    fn configure(&self, underlay: bool) -> PathBuf {
        let tag = std::process::id();
        let config = format!(
            "control_address = \"100.64.0.1\"\n\
             [wireguard]\ninterface = \"lgtok{tag}\"\nbackend = \"userspace\"\n\
             private_key_file = \"{}\"\nlisten_port = 51820\n\
             [lisp]\nmetrics = \"127.0.0.1:19092\"\ncontrol_socket = \"{}\"\n\
             state_file = \"{}\"\n{}\
             [[site]]\nname = \"robot\"\nkey = \"robot secret\"\npublic_key = \"{}\"\n\
             control_address = \"100.64.0.2\"\neids = [\"[1000] 10.1.0.7/32\"]\n",
            self.dir.join("ms.key").display(),
            self.socket().display(),
            self.dir.join("state/ms.db").display(),
            if underlay {
                "underlay_listen = \"127.0.0.1:4342\"\n[enrolment]\ncontrol_pool = \"100.64.1.0/24\"\n"
            } else {
                ""
            },
            format_key(&[0x22; 32]),
        );
        let file = self.dir.join("ms.toml");
        std::fs::write(&file, config).unwrap();
        file
    }

    /// Starts the map-server; returns once it says where it listens.
    fn start(&self, config: &Path) -> Running {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .arg(env!("CARGO_BIN_EXE_lispguard-mapserver"))
            .args(["run", "-c"])
            .arg(config)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let running = Running(child);
        let mut lines = BufReader::new(stderr).lines();
        let ready = lines
            .by_ref()
            .map_while(Result::ok)
            .inspect(|l| eprintln!("map-server: {l}"))
            .find(|l| {
                l.contains("map-server on") || l.starts_with("ERROR") || l.contains("cannot")
            });
        assert!(
            ready
                .as_deref()
                .is_some_and(|l| l.contains("map-server on")),
            "map-server did not start: {ready:?}"
        );
        // Its log goes on to the test's output.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                eprintln!("map-server: {line}");
            }
        });
        running
    }

    /// Runs `lispguard-mapserver token ARGS -s SOCKET`.
    fn token(&self, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_lispguard-mapserver"))
            .arg("token")
            .args(args)
            .arg("-s")
            .arg(self.socket())
            .output()
            .unwrap();
        eprintln!("token {args:?}: {out:?}");
        out
    }

    /// `token ARGS`, which must succeed: its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.token(args);
        assert!(out.status.success(), "token {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// `token ARGS`, which must fail: its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.token(args);
        assert!(!out.status.success(), "token {args:?}: {out:?}");
        String::from_utf8(out.stderr).unwrap()
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The line of `list` about token `id`.
fn row<'a>(list: &'a str, id: &str) -> &'a str {
    list.lines()
        .find(|l| l.starts_with(id))
        .unwrap_or_else(|| panic!("no token {id} in\n{list}"))
}

#[test]
fn tokens_are_created_listed_revoked_and_kept_across_a_restart() {
    let place = Place::new();
    let config = place.configure(true);
    let server = place.start(&config);

    // A pool for twenty robots: the token names the underlay listener and
    // pins the map-server's WireGuard key.
    let printed = place.ok(&[
        "create",
        "--iid",
        "1000",
        "--pool",
        "10.9.0.0/24",
        "--uses",
        "20",
        "--group",
        "robots",
    ]);
    let token = Token::decode(printed.trim()).expect("a token on stdout");
    assert_eq!(printed.lines().count(), 1, "{printed}");
    let ms_private = std::fs::read_to_string(place.dir.join("ms.key")).unwrap();
    let ms_private = netconf::parse_key(&ms_private).unwrap();
    assert_eq!(
        token.map_servers,
        [netconf::token::MapServer {
            address: "127.0.0.1:4342".parse().unwrap(),
            public_key: netconf::public_key(&ms_private),
        }]
    );
    assert!(
        token.grant.starts_with("iid=1000 uses=20 "),
        "{}",
        token.grant
    );
    let pool = token.id.to_string();

    // One access point's LAN, for an hour.
    let printed = place.ok(&[
        "create",
        "--iid",
        "1000",
        "--prefix",
        "10.8.1.0/24",
        "--expires",
        "1h",
    ]);
    let lan = Token::decode(printed.trim()).unwrap().id.to_string();

    // What may not be: a configured site's EIDs, a bad prefix, an unknown id.
    let error = place.fails(&["create", "--iid", "1000", "--pool", "10.1.0.0/24"]);
    assert!(error.contains("site 'robot'"), "{error}");
    let error = place.fails(&["create", "--iid", "1000", "--pool", "10.9.0.1/24"]);
    assert!(error.contains("did you mean 10.9.0.0/24"), "{error}");
    let error = place.fails(&["revoke", "0000000000000000"]);
    assert!(
        error.contains("no token has id 0000000000000000"),
        "{error}"
    );

    let list = place.ok(&["list"]);
    assert_eq!(list.lines().count(), 3, "a header and two tokens:\n{list}");
    let pool_row = row(&list, &pool);
    for shown in ["1000", "pool 10.9.0.0/24", " 20 ", "robots", "active"] {
        assert!(pool_row.contains(shown), "{shown}: {pool_row}");
    }
    assert!(row(&list, &lan).contains("10.8.1.0/24"), "{list}");
    assert!(
        !list.contains(&printed.trim()[5..20]),
        "no token text in\n{list}"
    );

    let said = place.ok(&["revoke", &pool]);
    assert!(said.contains(&format!("token {pool} revoked")), "{said}");
    let list = place.ok(&["list"]);
    assert!(row(&list, &pool).ends_with("revoked"), "{list}");
    assert!(row(&list, &lan).ends_with("active"), "{list}");

    // Restarted without an underlay listener: the tokens are there, as they
    // were; no new one is issued.
    drop(server);
    let error = place.fails(&["list"]);
    assert!(error.contains("is it running?"), "{error}");
    let config = place.configure(false);
    let _server = place.start(&config);
    let list = place.ok(&["list"]);
    assert_eq!(list.lines().count(), 3, "{list}");
    assert!(row(&list, &pool).ends_with("revoked"), "{list}");
    assert!(row(&list, &lan).ends_with("active"), "{list}");
    let error = place.fails(&["create", "--iid", "1000", "--pool", "10.9.0.0/24"]);
    assert!(error.contains("enrolment is off"), "{error}");
}
