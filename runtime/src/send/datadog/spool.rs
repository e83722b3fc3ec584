//! Payloads waiting on disk for the intake: one file per payload, replayed oldest first, after a
//! restart too.
//!
//! A file is `<sequence>.payload`: a first line `adrt-spool <version>`, a JSON header line
//! (endpoint, items), then the compressed body. It is written under a temporary name and renamed
//! into place, so a crash mid-write leaves a temporary file (removed at the next start), never a
//! truncated payload. A file that cannot be read back (corrupt, or written by an unknown
//! version) is renamed `*.unreadable`, reported and counted, and replay goes on with the next.
//! Over the size bound, the oldest payloads go first, counted.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::payload::{Endpoint, Payload};

/// The format written; files of this version and older are read.
pub const VERSION: u32 = 1;
const MAGIC: &str = "adrt-spool";
const SUFFIX: &str = ".payload";

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    endpoint: Endpoint,
    items: usize,
}

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    /// Sequence -> size, oldest first.
    files: BTreeMap<u64, u64>,
    bytes: u64,
    next: u64,
    pub dropped: u64,
    pub unreadable: u64,
}

impl Spool {
    /// Opens (creating) `dir` and indexes what an earlier run left there.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
        let mut spool = Spool { dir: dir.to_path_buf(), max_bytes, files: BTreeMap::new(), bytes: 0, next: 0, dropped: 0, unreadable: 0 };
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp-") {
                let _ = fs::remove_file(entry.path()); // a write a crash interrupted
                continue;
            }
            let Some(sequence) = name.strip_suffix(SUFFIX).and_then(|s| s.parse::<u64>().ok()) else { continue };
            let size = entry.metadata()?.len();
            spool.files.insert(sequence, size);
            spool.bytes += size;
            spool.next = spool.next.max(sequence + 1);
        }
        Ok(spool)
    }

    pub fn files(&self) -> usize {
        self.files.len()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    fn path(&self, sequence: u64) -> PathBuf {
        self.dir.join(format!("{sequence:020}{SUFFIX}"))
    }

    /// Writes `payload` as the newest file, then drops the oldest while over the bound.
    pub fn push(&mut self, payload: &Payload) -> io::Result<()> {
        let sequence = self.next;
        let header = serde_json::to_string(&Header { endpoint: payload.endpoint, items: payload.items }).expect("plain data");
        let temporary = self.dir.join(format!(".tmp-{sequence}"));
        let mut file = fs::File::create(&temporary)?;
        write!(file, "{MAGIC} {VERSION}\n{header}\n")?;
        file.write_all(&payload.body)?;
        file.sync_all()?;
        let size = file.metadata()?.len();
        drop(file);
        fs::rename(&temporary, self.path(sequence))?;
        self.next += 1;
        self.files.insert(sequence, size);
        self.bytes += size;
        while self.bytes > self.max_bytes && self.files.len() > 1 {
            let (&oldest, _) = self.files.iter().next().expect("not empty");
            self.remove(oldest);
            self.dropped += 1;
        }
        Ok(())
    }

    /// The oldest payload that reads back, with its sequence; unreadable ones are set aside.
    pub fn oldest(&mut self) -> Option<(u64, Payload)> {
        while let Some((&sequence, _)) = self.files.iter().next() {
            let path = self.path(sequence);
            match read(&path) {
                Ok(payload) => return Some((sequence, payload)),
                Err(reason) => {
                    tracing::error!(file = %path.display(), "spooled payload skipped: {reason}");
                    let _ = fs::rename(&path, path.with_extension("unreadable"));
                    self.forget(sequence);
                    self.unreadable += 1;
                }
            }
        }
        None
    }

    /// Deletes a payload (sent, or refused for good).
    pub fn remove(&mut self, sequence: u64) {
        if let Err(e) = fs::remove_file(self.path(sequence))
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!("removing spooled payload {sequence}: {e}");
        }
        self.forget(sequence);
    }

    fn forget(&mut self, sequence: u64) {
        if let Some(size) = self.files.remove(&sequence) {
            self.bytes -= size;
        }
    }
}

fn read(path: &Path) -> Result<Payload, String> {
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    let mut lines = bytes.splitn(3, |b| *b == b'\n');
    let first = std::str::from_utf8(lines.next().unwrap_or_default()).map_err(|_| "not a spool file".to_string())?;
    let version: u32 = first
        .strip_prefix(MAGIC)
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| "not a spool file".to_string())?;
    if version > VERSION {
        return Err(format!("written by a newer adrt (spool version {version}; this one reads up to {VERSION})"));
    }
    let header: Header = serde_json::from_slice(lines.next().unwrap_or_default()).map_err(|e| format!("bad header: {e}"))?;
    let body = lines.next().ok_or("no body")?.to_vec();
    Ok(Payload { endpoint: header.endpoint, body, items: header.items })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(n: u8) -> Payload {
        Payload { endpoint: Endpoint::Series, body: vec![n; 100], items: n as usize }
    }

    #[test]
    fn payloads_come_back_oldest_first_after_a_restart() {
        let dir = adrt_testkit::scratch_dir("spool");
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        for n in 1..=3 {
            spool.push(&payload(n)).unwrap();
        }
        std::fs::write(dir.join(".tmp-99"), b"half a write").unwrap();
        drop(spool);
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        assert!(!dir.join(".tmp-99").exists(), "an interrupted write is cleaned up");
        let (first, got) = spool.oldest().unwrap();
        assert_eq!(got, payload(1));
        spool.remove(first);
        spool.push(&payload(4)).unwrap();
        let mut order = Vec::new();
        while let Some((sequence, got)) = spool.oldest() {
            order.push(got.items);
            spool.remove(sequence);
        }
        assert_eq!(order, [2, 3, 4]);
        assert_eq!((spool.files(), spool.bytes()), (0, 0));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn over_its_bound_the_oldest_go_and_unreadable_files_are_set_aside() {
        let dir = adrt_testkit::scratch_dir("spool-bound");
        let one = {
            let mut probe = Spool::open(&dir.join("probe"), u64::MAX).unwrap();
            probe.push(&payload(1)).unwrap();
            probe.bytes()
        };
        let mut spool = Spool::open(&dir.join("s"), one * 3).unwrap();
        for n in 1..=5 {
            spool.push(&payload(n)).unwrap();
        }
        assert_eq!((spool.files(), spool.dropped), (3, 2));
        // A file damaged on disk, and one from a future version.
        std::fs::write(spool.path(2), b"garbage").unwrap();
        std::fs::write(spool.path(3), b"adrt-spool 9\n{}\nx").unwrap();
        let (_, got) = spool.oldest().unwrap();
        assert_eq!(got, payload(5));
        assert_eq!(spool.unreadable, 2);
        assert!(spool.path(2).with_extension("unreadable").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
