//! The daemons' logger (agent and map-server): one line per record to
//! stderr, level first, so that procd, systemd or a terminal can take it
//! as it is.

use log::{LevelFilter, Log, Metadata, Record};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

struct Stderr;

impl Log for Stderr {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        if TIMESTAMPS.load(Ordering::Relaxed) {
            eprintln!("{} {:<5} {}", now_utc(), record.level(), record.args());
        } else {
            eprintln!("{:<5} {}", record.level(), record.args());
        }
    }

    fn flush(&self) {}
}

/// Whether lines start with the time (`LISPGUARD_LOG_TIME=1`): for
/// reading logs of several processes side by side; procd and systemd add
/// their own.
static TIMESTAMPS: AtomicBool = AtomicBool::new(false);

/// The wall-clock time of day, UTC, to the millisecond.
fn now_utc() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let ms = since.as_millis() % 86_400_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

fn level_filter(level: &str) -> Result<LevelFilter, String> {
    level
        .parse()
        .map_err(|_| format!("unknown log level '{level}': use error, warn, info, debug or trace"))
}

/// Installs the logger at `level` (error, warn, info, debug, trace): to
/// syslog when `syslog` is asked for and /dev/log answers (OpenWrt's
/// logread, the journal), to stderr otherwise.
pub fn init_with(level: &str, syslog: bool) -> Result<(), String> {
    if syslog {
        let filter = level_filter(level)?;
        match syslog::init_unix(syslog::Facility::LOG_DAEMON, filter) {
            Ok(()) => return Ok(()),
            Err(e) => eprintln!("no syslog ({e}): logging to stderr"),
        }
    }
    init(level)
}

/// Installs the logger to stderr at `level` (error, warn, info, debug,
/// trace).
pub fn init(level: &str) -> Result<(), String> {
    TIMESTAMPS.store(
        std::env::var_os("LISPGUARD_LOG_TIME").is_some(),
        Ordering::Relaxed,
    );
    let filter: LevelFilter = level.parse().map_err(|_| {
        format!("unknown log level '{level}': use error, warn, info, debug or trace")
    })?;
    log::set_logger(&Stderr).map_err(|e| e.to_string())?;
    log::set_max_level(filter);
    Ok(())
}
