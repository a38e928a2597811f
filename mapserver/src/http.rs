//! Prometheus metrics over HTTP: `GET /metrics` on a local address. A
//! minimal HTTP/1.0 responder is enough for a scraper and costs no
//! dependency.

use crate::metrics::Metrics;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// Serves the metrics on `addr` from a thread of its own.
pub fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> io::Result<std::thread::JoinHandle<()>> {
    let listener = TcpListener::bind(addr)?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = answer(stream, &metrics);
            }
        })
}

fn answer(mut stream: TcpStream, metrics: &Metrics) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
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
        ("200 OK", "text/plain; version=0.0.4", metrics.render())
    } else {
        ("404 Not Found", "text/plain", "try /metrics\n".to_string())
    };
    write!(
        stream,
        "HTTP/1.0 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}
