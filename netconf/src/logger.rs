//! The daemons' logger (agent and map-server): one line per record to
//! stderr, level first, so that procd, systemd or a terminal can take it
//! as it is.

use log::{LevelFilter, Log, Metadata, Record};

struct Stderr;

impl Log for Stderr {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("{:<5} {}", record.level(), record.args());
        }
    }

    fn flush(&self) {}
}

/// Installs the logger at `level` (error, warn, info, debug, trace).
pub fn init(level: &str) -> Result<(), String> {
    let filter: LevelFilter = level.parse().map_err(|_| {
        format!("unknown log level '{level}': use error, warn, info, debug or trace")
    })?;
    log::set_logger(&Stderr).map_err(|e| e.to_string())?;
    log::set_max_level(filter);
    Ok(())
}
