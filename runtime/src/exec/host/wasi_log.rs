//! A WASI check's stdout and stderr, written to the agent's log line by line, secret values
//! masked.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use crate::secrets::Scrubber;

/// Longer lines are split: a check cannot make the agent buffer without bound.
const MAX_LINE_BYTES: usize = 16 * 1024;

#[derive(Clone)]
pub struct LogStream {
    check: Arc<str>,
    stream: &'static str,
    scrubber: Arc<Scrubber>,
}

impl LogStream {
    pub fn stdout(check: Arc<str>, scrubber: Arc<Scrubber>) -> Self {
        LogStream { check, stream: "stdout", scrubber }
    }
    pub fn stderr(check: Arc<str>, scrubber: Arc<Scrubber>) -> Self {
        LogStream { check, stream: "stderr", scrubber }
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter { target: self.clone(), line: Vec::new() })
    }
}

struct LineWriter {
    target: LogStream,
    line: Vec<u8>,
}

impl LineWriter {
    fn emit(&mut self) {
        let text = String::from_utf8_lossy(&self.line);
        let text = self.target.scrubber.scrub(text.trim_end_matches(['\n', '\r']));
        tracing::info!(target: "check", check = &*self.target.check, stream = self.target.stream, "{}", crate::text::printable(&text));
        self.line.clear();
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        for &byte in buf {
            self.line.push(byte);
            if byte == b'\n' || self.line.len() >= MAX_LINE_BYTES {
                self.emit();
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if !self.line.is_empty() {
            self.emit();
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.emit();
        }
    }
}
