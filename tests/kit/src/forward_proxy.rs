//! A forward HTTP proxy for the tests of checks' `proxy` option: plain HTTP requests in absolute
//! form are forwarded (rewritten to origin form), `CONNECT host:port` is tunnelled. It records
//! the request line of each, so a test can tell that a request went through it. nginx cannot be
//! this proxy (it does not answer `CONNECT`), hence this one: threads and blocking sockets, one
//! exchange per connection, enough for a test and nothing more.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

pub struct ForwardProxy {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl ForwardProxy {
    /// Listens on a free loopback port until the process ends.
    pub fn start() -> std::io::Result<ForwardProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || {
                    let _ = serve(client, &log);
                });
            }
        });
        Ok(ForwardProxy { addr, seen })
    }

    /// `http://127.0.0.1:<port>`, as a check's `proxy` option names it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The request lines received so far (`GET http://... HTTP/1.1`, `CONNECT host:port HTTP/1.1`).
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(client: TcpStream, seen: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        // One exchange per connection: the upstream closes when it has answered.
        if !line.to_ascii_lowercase().starts_with("connection:") && !line.to_ascii_lowercase().starts_with("proxy-") {
            head.push(line);
        }
    }
    let request_line = request_line.trim_end().to_string();
    seen.lock().unwrap().push(request_line.clone());
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let mut client = client;
    if method == "CONNECT" {
        let upstream = TcpStream::connect(target)?;
        client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
        return pipe(reader, client, upstream);
    }
    let Some(rest) = target.strip_prefix("http://") else {
        client.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")?;
        return Ok(());
    };
    let (authority, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let mut upstream = TcpStream::connect(authority)?;
    let mut forwarded = format!("{method} {path} HTTP/1.1\r\n");
    for line in head {
        forwarded.push_str(&line);
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    upstream.write_all(forwarded.as_bytes())?;
    pipe(reader, client, upstream)
}

/// Copies both ways until either side closes.
fn pipe(mut from_client: BufReader<TcpStream>, mut client: TcpStream, upstream: TcpStream) -> std::io::Result<()> {
    let mut to_upstream = upstream.try_clone()?;
    let mut from_upstream = upstream;
    let buffered = from_client.buffer().to_vec();
    to_upstream.write_all(&buffered)?;
    from_client.consume(buffered.len());
    let inbound = std::thread::spawn(move || {
        let mut inner = from_client.into_inner();
        let _ = std::io::copy(&mut inner, &mut to_upstream);
        let _ = to_upstream.shutdown(Shutdown::Write);
    });
    let mut buffer = [0u8; 16 << 10];
    loop {
        let n = from_upstream.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        client.write_all(&buffer[..n])?;
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = inbound.join();
    Ok(())
}
