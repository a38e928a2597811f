//! The daemons' logger (agent and map-server): one line per record, to
//! stderr (level first, so that procd, systemd or a terminal can take it
//! as it is) or to the local syslog socket (OpenWrt's logread, the
//! journal).
//!
//! Syslog here is one datagram per record to /dev/log in the local form
//! `<PRI>ident[pid]: message` that logd, journald and rsyslog all take: the
//! daemon adds the time and host itself, so no clock formatting (and no
//! crate for it) is needed.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// The local syslog socket.
const SYSLOG_SOCKET: &str = "/dev/log";
/// syslog facility "daemon" (3), shifted as the priority value wants it.
const FACILITY_DAEMON: u8 = 3 << 3;

enum Sink {
    /// `timestamps`: lines start with the time (`LISPGUARD_LOG_TIME=1`),
    /// for reading logs of several processes side by side; procd and
    /// systemd add their own.
    Stderr {
        timestamps: bool,
    },
    Syslog(Syslog),
}

struct Logger(Sink);

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        match &self.0 {
            Sink::Stderr { timestamps } => to_stderr(&stderr_line(*timestamps, record)),
            Sink::Syslog(syslog) => {
                let line = syslog.line(record.level(), &record.args().to_string());
                // A lost line (logd restarting) is not worth failing for;
                // stderr is what procd and systemd collect otherwise.
                if syslog.socket.send(line.as_bytes()).is_err() {
                    to_stderr(&stderr_line(false, record));
                }
            }
        }
    }

    fn flush(&self) {}
}

/// A record's line on stderr, whole: `[time ]LEVEL message\n`.
fn stderr_line(timestamps: bool, record: &Record<'_>) -> String {
    match timestamps {
        true => format!("{} {:<5} {}\n", now_utc(), record.level(), record.args()),
        false => format!("{:<5} {}\n", record.level(), record.args()),
    }
}

/// Writes a line to stderr in one system call. Written piece by piece, as
/// `eprintln!` does its arguments, a line took some twenty, and each woke
/// whoever reads the pipe (procd, systemd, the tests): on a first
/// contact's path, hundreds of microseconds.
fn to_stderr(line: &str) {
    // Nowhere to say that stderr failed.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Records sent to a syslog socket.
struct Syslog {
    socket: UnixDatagram,
    /// `program[pid]`, as syslog lines name their sender.
    tag: String,
}

impl Syslog {
    fn connect(socket: &Path, program: &str) -> std::io::Result<Syslog> {
        let datagram = UnixDatagram::unbound()?;
        datagram.connect(socket)?;
        Ok(Syslog {
            socket: datagram,
            tag: format!("{program}[{}]", std::process::id()),
        })
    }

    /// One record as a syslog datagram: `<PRI>tag: message`.
    fn line(&self, level: Level, message: &str) -> String {
        let severity = match level {
            Level::Error => 3,
            Level::Warn => 4,
            Level::Info => 6,
            Level::Debug | Level::Trace => 7,
        };
        format!("<{}>{}: {message}", FACILITY_DAEMON | severity, self.tag)
    }
}

/// The wall-clock time of day, UTC, to the microsecond: a cause and its
/// effect in another process fall within one millisecond often.
fn now_utc() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let us = since.as_micros() % 86_400_000_000;
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        us / 3_600_000_000,
        us / 60_000_000 % 60,
        us / 1_000_000 % 60,
        us % 1_000_000
    )
}

fn level_filter(level: &str) -> Result<LevelFilter, String> {
    level
        .parse()
        .map_err(|_| format!("unknown log level '{level}': use error, warn, info, debug or trace"))
}

/// This program's name, as syslog lines name it.
fn program_name() -> String {
    std::env::args_os()
        .next()
        .as_deref()
        .and_then(|arg0| Path::new(arg0).file_name())
        .map_or_else(
            || "lispguard".into(),
            |name| name.to_string_lossy().into_owned(),
        )
}

/// Installs the logger at `level` (error, warn, info, debug, trace): to
/// syslog when `syslog` is asked for and /dev/log answers, to stderr
/// otherwise.
pub fn init_with(level: &str, syslog: bool) -> Result<(), String> {
    let filter = level_filter(level)?;
    let sink = match syslog.then(|| Syslog::connect(Path::new(SYSLOG_SOCKET), &program_name())) {
        Some(Ok(syslog)) => Sink::Syslog(syslog),
        Some(Err(e)) => {
            eprintln!("no syslog at {SYSLOG_SOCKET} ({e}): logging to stderr");
            stderr()
        }
        None => stderr(),
    };
    static LOGGER: OnceLock<Logger> = OnceLock::new();
    if LOGGER.set(Logger(sink)).is_err() {
        return Err("the logger is already installed".into());
    }
    let logger = LOGGER.get().ok_or("the logger is not installed")?;
    log::set_logger(logger).map_err(|e| e.to_string())?;
    log::set_max_level(filter);
    Ok(())
}

/// Installs the logger to stderr at `level` (error, warn, info, debug,
/// trace).
pub fn init(level: &str) -> Result<(), String> {
    init_with(level, false)
}

fn stderr() -> Sink {
    Sink::Stderr {
        timestamps: std::env::var_os("LISPGUARD_LOG_TIME").is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stderr_record_is_one_whole_line() {
        let args = format_args!("peer {} removed", "1a2b");
        let record = Record::builder().level(Level::Info).args(args).build();
        assert_eq!(stderr_line(false, &record), "INFO  peer 1a2b removed\n");
        let line = stderr_line(true, &record);
        // hh:mm:ss.uuuuuu, then the same.
        assert_eq!(line.len(), 16 + "INFO  peer 1a2b removed\n".len());
        assert!(line.ends_with(" INFO  peer 1a2b removed\n"), "{line}");
    }

    #[test]
    fn a_record_reaches_the_syslog_socket_as_one_local_syslog_line() {
        let dir = std::env::temp_dir().join(format!("lg-syslog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("log");
        let daemon = UnixDatagram::bind(&path).unwrap();
        let syslog = Syslog::connect(&path, "lispguard").unwrap();
        let line = syslog.line(Level::Warn, "peer 1a2b removed");
        syslog.socket.send(line.as_bytes()).unwrap();
        let mut buf = [0u8; 256];
        let n = daemon.recv(&mut buf).unwrap();
        let expected = format!("<28>lispguard[{}]: peer 1a2b removed", std::process::id());
        assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), expected);
        assert_eq!(
            syslog.line(Level::Error, "x").split('>').next(),
            Some("<27")
        );
        assert_eq!(syslog.line(Level::Info, "x").split('>').next(), Some("<30"));
        assert_eq!(
            syslog.line(Level::Trace, "x").split('>').next(),
            Some("<31")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
