//! A minimal HTTP/1.1 client for the emulator's and the proxy's own control APIs (no HTTP
//! client crate needed for this).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Sends `method path` with `body` (JSON or empty) to `url` (`http://host:port`); the response
/// body on a 2xx, else the status line.
pub fn request(url: &str, method: &str, path: &str, body: &str) -> Result<String, String> {
    let address = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| e.to_string())?;
    let response = String::from_utf8_lossy(&response).into_owned();
    let ok = response.starts_with("HTTP/1.1 2") || response.starts_with("HTTP/1.0 2");
    if !ok {
        return Err(response.lines().next().unwrap_or("no response").to_owned());
    }
    Ok(response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default())
}
