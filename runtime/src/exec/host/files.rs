//! `files`: read-only access to host files and directories.
//!
//! Only regular files are read (a FIFO or device could block or never end), up to a size limit.
//! procfs and sysfs files are read synchronously: they are generated in memory and never wait
//! on a disk, and a blocking-pool hop would cost more than the read itself.

use std::io::Read;
use std::path::Path;

use crate::exec::bindings::adrt::check::files::{DirEntry, EntryKind, Error, Host};
use crate::exec::policy::Import;
use crate::exec::store::StoreState;
use crate::regular_file::{self, ReadError};

pub const MAX_FILE_BYTES: u64 = 16 << 20;
pub const MAX_DIR_ENTRIES: usize = 100_000;

impl Host for StoreState {
    async fn read(&mut self, path: String) -> Result<Vec<u8>, Error> {
        self.allow(Import::ReadFile { path: &path }).map_err(Error::Denied)?;
        read_file(&path)
    }

    async fn list_dir(&mut self, path: String) -> Result<Vec<DirEntry>, Error> {
        self.allow(Import::ListDir { path: &path }).map_err(Error::Denied)?;
        list_dir(&path)
    }
}

/// The least room offered to each read(2). procfs files say they are empty and are generated
/// anew by every read call: `/proc/net/tcp` walks the whole socket hash table per call, the last
/// call (the one that finds the end) included. Offering 64 KiB takes a typical procfs or sysfs
/// file in one call plus that last one; std's reads for an empty-looking file start at 32 bytes,
/// which cost `/proc/net/tcp` twice the walks.
const MIN_READ_BYTES: usize = 64 << 10;

thread_local! {
    /// Where files are read before being copied out at their size, so that each read allocates
    /// what the file holds rather than 64 KiB.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Reads a regular file whole, as the `files.read` import does (the benchmarks measure this
/// natively as the checks' bare I/O).
pub fn read_file(path: &str) -> Result<Vec<u8>, Error> {
    read_regular_file(path, MAX_FILE_BYTES)
}

/// Reads a regular file of at most `max_bytes`: opened non-blocking, anything else refused.
pub fn read_regular_file(path: &str, max_bytes: u64) -> Result<Vec<u8>, Error> {
    let (file, meta) = regular_file::open(Path::new(path)).map_err(|e| match e {
        ReadError::Io(e) => io_error(path, e),
        other => Error::Io(format!("{path}: {other}")),
    })?;
    SCRATCH.with_borrow_mut(|scratch| {
        scratch.clear();
        scratch.reserve(MIN_READ_BYTES.max(meta.len().min(max_bytes + 1) as usize));
        let read = file.take(max_bytes + 1).read_to_end(scratch).map_err(|e| io_error(path, e));
        let bytes = match read {
            Ok(n) if n as u64 > max_bytes => Err(Error::Io(format!("{path}: larger than {}", size(max_bytes)))),
            Ok(_) => Ok(scratch.to_vec()),
            Err(e) => Err(e),
        };
        // Keep the usual 64 KiB, not the largest file ever read.
        if scratch.capacity() > 4 * MIN_READ_BYTES {
            *scratch = Vec::new();
        }
        bytes
    })
}

/// Lists a directory, sorted by name, as the `files.list-dir` import does.
pub fn list_dir(path: &str) -> Result<Vec<DirEntry>, Error> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| io_error(path, e))? {
        let entry = entry.map_err(|e| io_error(path, e))?;
        if entries.len() == MAX_DIR_ENTRIES {
            return Err(Error::Io(format!("{path}: more than {MAX_DIR_ENTRIES} entries")));
        }
        let kind = match entry.file_type() {
            Ok(t) if t.is_symlink() => EntryKind::Symlink,
            Ok(t) if t.is_dir() => EntryKind::Directory,
            Ok(t) if t.is_file() => EntryKind::File,
            _ => EntryKind::Other,
        };
        entries.push(DirEntry { name: entry.file_name().to_string_lossy().into_owned(), kind });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// `16 MiB`, `64 KiB` or `100 bytes`.
fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

fn io_error(path: &str, error: std::io::Error) -> Error {
    match error.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound(path.to_string()),
        std::io::ErrorKind::PermissionDenied => Error::Denied(format!("{path}: {error}")),
        _ => Error::Io(format!("{path}: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use adrt_testkit::scratch_dir;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let fifo = scratch_dir("fifo").join("pipe");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a file.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let (tx, rx) = mpsc::channel();
        let path = fifo.to_str().unwrap().to_string();
        std::thread::spawn(move || tx.send(read_file(&path)).unwrap());
        // A blocking open would wait for a writer forever.
        let result = rx.recv_timeout(Duration::from_secs(10)).expect("reading a FIFO must not block");
        match result {
            Err(Error::Io(message)) => assert!(message.ends_with("pipe: not a regular file"), "{message}"),
            other => panic!("expected an I/O error, got {other:?}"),
        }
    }

    #[test]
    fn files_larger_than_one_read_are_read_whole() {
        let path = scratch_dir("large").join("data");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        assert_eq!(read_file(path.to_str().unwrap()).unwrap(), data);
    }

    #[test]
    fn procfs_files_that_claim_to_be_empty_are_read_whole() {
        // kallsyms reports size 0, spans many seq_file pages (megabytes) and does not change.
        let path = "/proc/kallsyms";
        assert_eq!(std::fs::metadata(path).unwrap().len(), 0);
        let bytes = read_file(path).unwrap();
        assert!(bytes.len() > 1 << 20, "{} bytes", bytes.len());
        assert_eq!(bytes, std::fs::read(path).unwrap());
    }

    #[test]
    fn devices_and_files_over_the_bound_are_refused() {
        assert!(matches!(read_regular_file("/dev/zero", 64 << 10), Err(Error::Io(m)) if m == "/dev/zero: not a regular file"));
        let path = scratch_dir("bound").join("token");
        std::fs::write(&path, vec![b'x'; 100]).unwrap();
        let path = path.to_str().unwrap();
        assert_eq!(read_regular_file(path, 100).unwrap().len(), 100);
        assert!(matches!(read_regular_file(path, 99), Err(Error::Io(m)) if m.ends_with("larger than 99 bytes")));
    }

    #[test]
    fn missing_files_and_directories_are_not_found() {
        assert!(matches!(read_file("/nonexistent/adrt"), Err(Error::NotFound(p)) if p == "/nonexistent/adrt"));
        assert!(matches!(list_dir("/nonexistent/adrt"), Err(Error::NotFound(_))));
        assert!(matches!(read_file("/proc"), Err(Error::Io(m)) if m == "/proc: not a regular file"));
    }
}
