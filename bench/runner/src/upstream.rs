//! A small, fast HTTP/1.1 upstream on 127.0.0.1: every path answers 200 with
//! a fixed JSON body whose FNV-1a hash is even (so the auth example lets the
//! request through); `/delay/<seconds>` answers the same after that long
//! (fractional seconds, as httpbin).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::Result;

/// A running upstream; it lives as long as the process.
pub(crate) struct Upstream {
    port: u16,
}

impl Upstream {
    /// Binds a free port and serves in background threads.
    pub(crate) fn start(body: Vec<u8>) -> Result<Upstream> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let body: Arc<[u8]> = body.into();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let body = body.clone();
                thread::spawn(move || {
                    let _ = serve(stream, &body);
                });
            }
        });
        Ok(Upstream { port })
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }
}

fn serve(stream: TcpStream, body: &[u8]) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let mut content_length = 0usize;
        let mut close = false;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 {
                return Ok(());
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    content_length = value.parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("connection") {
                    close = value.eq_ignore_ascii_case("close");
                }
            }
        }
        let mut skip = vec![0; content_length];
        std::io::Read::read_exact(&mut reader, &mut skip)?;
        if let Some(seconds) = path
            .strip_prefix("/delay/")
            .and_then(|s| s.parse::<f64>().ok())
        {
            thread::sleep(Duration::from_secs_f64(seconds.clamp(0.0, 10.0)));
        }
        let mut response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        response.extend_from_slice(body);
        writer.write_all(&response)?;
        if close {
            return Ok(());
        }
    }
}
