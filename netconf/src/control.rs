//! The client side of a daemon's control socket: one request line over a
//! unix stream socket, then the answer until the daemon closes it. Each
//! daemon keeps its own protocol text; this is only the exchange.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Why a request got no answer.
#[derive(Debug)]
pub enum Error {
    /// Nothing listens at the path: the daemon is not running, or uses
    /// another socket. Callers say which daemon they looked for.
    Unreachable(io::Error),
    /// Connected, but sending the request or reading the answer failed.
    Exchange(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unreachable(e) | Error::Exchange(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

/// Sends `request` as one line and returns the whole answer. `timeout`
/// bounds each read and write, so a stalled daemon is an error, not a
/// command that hangs.
pub fn request(path: &Path, request: &str, timeout: Duration) -> Result<String, Error> {
    let mut stream = UnixStream::connect(path).map_err(Error::Unreachable)?;
    exchange(&mut stream, request, timeout).map_err(|e| match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Exchange(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no answer within {} s", timeout.as_secs_f32()),
        )),
        _ => Error::Exchange(e),
    })
}

fn exchange(stream: &mut UnixStream, request: &str, timeout: Duration) -> io::Result<String> {
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(format!("{request}\n").as_bytes())?;
    stream.shutdown(Shutdown::Write)?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::UnixListener;
    use std::path::PathBuf;

    /// A socket path of its own for each test, removed at the end.
    struct Socket(PathBuf);

    impl Socket {
        fn new(name: &str) -> Socket {
            let path = std::env::temp_dir().join(format!(
                "netconf-control-{name}-{}.sock",
                std::process::id()
            ));
            let _ = std::fs::remove_file(&path);
            Socket(path)
        }
    }

    impl Drop for Socket {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn sends_one_line_and_reads_until_close() {
        let socket = Socket::new("answer");
        let listener = UnixListener::bind(&socket.0).unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut line = String::new();
            BufReader::new(&stream).read_line(&mut line).unwrap();
            stream
                .write_all(format!("OK\nyou said {line}").as_bytes())
                .unwrap();
        });
        let answer = request(&socket.0, "sites", Duration::from_secs(5)).unwrap();
        assert_eq!(answer, "OK\nyou said sites\n");
        server.join().unwrap();
    }

    #[test]
    fn no_daemon_is_unreachable() {
        let socket = Socket::new("nobody");
        let err = request(&socket.0, "status", Duration::from_secs(5)).unwrap_err();
        assert!(matches!(err, Error::Unreachable(_)), "{err:?}");
    }

    #[test]
    fn a_stalled_daemon_is_an_error_after_the_timeout() {
        let socket = Socket::new("stalled");
        let listener = UnixListener::bind(&socket.0).unwrap();
        let err = request(&socket.0, "status", Duration::from_millis(100)).unwrap_err();
        assert!(
            matches!(&err, Error::Exchange(e) if e.kind() == io::ErrorKind::TimedOut),
            "{err:?}"
        );
        drop(listener);
    }
}
