//! Start-up with a large static set: N mappings (default 1M) from a
//! mappings file streamed into the engine, as `run` does; the time it
//! takes, the peak and the steady memory, bytes per EID; then the time
//! `check-config` (and a reload) take to check the file whole. `--toml` loads the same set as `[[static]]` tables instead (the
//! way before the mappings file). One set per process: the peak is the
//! process's.
//!
//! `cargo bench -p mapserver --bench statics [-- N] [-- --toml]`

#[path = "../tests/common/mod.rs"]
mod common;

use mapserver::config::Config;
use mapserver::engine::MapServer;
use mapserver::metrics::Metrics;
use mapserver::outbox::Outbox;
use mapserver::statics;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::os::unix::fs::DirBuilderExt;
use std::sync::Arc;
use std::time::Instant;

/// A line of /proc/self/status, in bytes.
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let count: u32 = args
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let toml = args.iter().any(|a| a == "--toml");
    let dir = std::env::temp_dir().join(format!("lispguard-statics-{}", std::process::id()));
    std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
    // Host routes in 10.0.0.0/8, a key and an endpoint each; written as
    // a stream, so that making them raises no peak.
    let file = dir.join("ms.toml");
    let head = "control_address = \"100.64.0.1\"\n[wireguard]\nprivate_key_file = \"/dev/null\"\n";
    let mut config = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    let mut mappings =
        std::io::BufWriter::new(std::fs::File::create(dir.join("mappings")).unwrap());
    write!(config, "{head}").unwrap();
    if !toml {
        writeln!(config, "[lisp]\nmappings_file = \"mappings\"").unwrap();
    }
    for i in 0..count {
        let eid = Ipv4Addr::from(0x0a00_0000 + 1 + i);
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(&i.to_be_bytes());
        let key = netconf::format_key(&key);
        let rloc = Ipv4Addr::from(0xc000_0200 + (i % 250) + 1);
        match toml {
            false => writeln!(mappings, "[1000] {eid}/32 {key} {rloc}:51820 15"),
            true => writeln!(
                config,
                "[[static]]\neid = \"[1000] {eid}/32\"\npublic_key = \"{key}\"\nrloc = \"{rloc}:51820\"\nttl = 15"
            ),
        }
        .unwrap();
    }
    config.flush().unwrap();
    mappings.flush().unwrap();
    drop((config, mappings));
    let before = status_bytes("VmRSS:");

    let started = Instant::now();
    let config = Config::load(&file).unwrap();
    let now = Instant::now();
    let metrics = Arc::new(Metrics::default());
    let mut engine = MapServer::new(&config, metrics, now, fastrand::Rng::with_seed(1));
    let served = match toml {
        false => statics::apply(&mut engine, &config, now, &mut Outbox::default()).unwrap(),
        true => config.statics.len(),
    };
    let loaded = started.elapsed();
    let path = config.lisp.mappings_file.clone();
    drop(config);
    let steady = status_bytes("VmRSS:").saturating_sub(before);
    let peak = status_bytes("VmHWM:").saturating_sub(before);
    let started = Instant::now();
    if let Some(path) = path {
        statics::check(&path).unwrap();
    }
    let checked = started.elapsed();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(served, count as usize);
    let lookup = format!("[1000] {}/32", Ipv4Addr::from(0x0a00_0000 + count));
    assert!(engine.lookup(&lookup.parse().unwrap()).is_some());
    println!(
        "{count} static mappings from {}: start {:.2} s, memory steady {} MB, \
         peak {} MB ({:.2}x), {} B per EID; checked whole in {:.2} s",
        if toml {
            "[[static]] tables"
        } else {
            "a mappings file"
        },
        loaded.as_secs_f64(),
        steady >> 20,
        peak >> 20,
        peak as f64 / steady.max(1) as f64,
        steady / u64::from(count),
        checked.as_secs_f64(),
    );
}
