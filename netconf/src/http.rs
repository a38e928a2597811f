//! Prometheus metrics over HTTP: `GET /metrics` on a local address, for
//! both daemons. A minimal HTTP/1.0 responder is enough for a scraper and
//! costs no dependency; each daemon passes in how its text is rendered.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// Serves `render()` on `addr` from a thread of its own, one scrape at a
/// time. A render that fails is answered 503 with its error.
pub fn serve<R>(addr: SocketAddr, render: R) -> io::Result<std::thread::JoinHandle<()>>
where
    R: Fn() -> Result<String, String> + Send + 'static,
{
    serve_on(TcpListener::bind(addr)?, render)
}

/// As [`serve`], on a listener already bound.
pub fn serve_on<R>(listener: TcpListener, render: R) -> io::Result<std::thread::JoinHandle<()>>
where
    R: Fn() -> Result<String, String> + Send + 'static,
{
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = answer(stream, &render);
            }
        })
}

fn answer(mut stream: TcpStream, render: &dyn Fn() -> Result<String, String>) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut request = [0u8; 2048];
    let mut len = 0;
    while len < request.len() && !request[..len].windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut request[len..])? {
            0 => break,
            n => len += n,
        }
    }
    let head = String::from_utf8_lossy(&request[..len]);
    let path = head.split_whitespace().nth(1).unwrap_or("");
    let (status, kind, body) = if head.starts_with("GET ") && path == "/metrics" {
        match render() {
            Ok(text) => ("200 OK", "text/plain; version=0.0.4", text),
            Err(e) => ("503 Service Unavailable", "text/plain", format!("{e}\n")),
        }
    } else {
        ("404 Not Found", "text/plain", "try /metrics\n".to_string())
    };
    write!(
        stream,
        "HTTP/1.0 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut http = TcpStream::connect(addr).unwrap();
        write!(http, "GET {path} HTTP/1.0\r\n\r\n").unwrap();
        let mut text = String::new();
        http.read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn serves_the_rendering_on_metrics_only_and_a_failure_as_503() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let calls = std::sync::atomic::AtomicU32::new(0);
        serve_on(listener, move || {
            match calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed) {
                0 => Ok("up 1\n".into()),
                _ => Err("the agent did not answer".into()),
            }
        })
        .unwrap();
        let ok = get(addr, "/metrics");
        assert!(ok.starts_with("HTTP/1.0 200 OK\r\n"), "{ok}");
        assert!(ok.ends_with("\r\n\r\nup 1\n"), "{ok}");
        assert!(get(addr, "/").starts_with("HTTP/1.0 404 "));
        let failed = get(addr, "/metrics");
        assert!(failed.starts_with("HTTP/1.0 503 "), "{failed}");
        assert!(failed.ends_with("the agent did not answer\n"), "{failed}");
    }
}
