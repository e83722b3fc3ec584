//! `files`: read-only access to host files and directories, under the check's file roots.
//!
//! A path is read only when it lies under a root the check's policy grants (`procfs`, `sysfs`,
//! explicit paths), and it is opened *beneath* that root's directory handle (openat2 with
//! `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`): neither `..` nor a symlink nor procfs's magic
//! links (`/proc/<pid>/root`) lead out of it. Only regular files are read (a FIFO or device could block or never end), up to a size limit.
//! procfs and sysfs files are read synchronously: they are generated in memory and never wait
//! on a disk, and a blocking-pool hop would cost more than the read itself.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::exec::bindings::adrt::check::files::{DirEntry, EntryKind, Error, Host};
use crate::exec::policy::Import;
use crate::exec::store::StoreState;
use crate::policy::FileRoot;
use crate::regular_file::{self, ReadError};

pub const MAX_FILE_BYTES: u64 = 16 << 20;
pub const MAX_DIR_ENTRIES: usize = 100_000;

impl Host for StoreState {
    async fn read(&mut self, path: String) -> Result<Vec<u8>, Error> {
        self.allow(Import::ReadFile { path: &path }).map_err(Error::Denied)?;
        let file = self.open_granted(&path, FILE_FLAGS)?;
        read_open_file(&path, File::from(file), MAX_FILE_BYTES)
    }

    async fn list_dir(&mut self, path: String) -> Result<Vec<DirEntry>, Error> {
        self.allow(Import::ListDir { path: &path }).map_err(Error::Denied)?;
        let dir = self.open_granted(&path, OFlags::RDONLY | OFlags::DIRECTORY)?;
        list_open_dir(&path, dir)
    }
}

/// How files are opened: read-only, non-blocking so that a FIFO cannot hold the open, never
/// becoming the controlling terminal.
pub(crate) const FILE_FLAGS: OFlags = OFlags::RDONLY.union(OFlags::NONBLOCK).union(OFlags::NOCTTY);

impl StoreState {
    /// Opens `path` beneath the check's file root it lies under. A path outside every root, or
    /// one that resolves out of its root, is refused (rule `file-root`), counted and logged.
    pub(crate) fn open_granted(&self, path: &str, flags: OFlags) -> Result<OwnedFd, Error> {
        let (index, rest) = self.granted_root(path)?;
        self.roots.open(index, rest, flags).map_err(|errno| self.open_failed(path, index, errno))
    }

    /// The file root `path` lies under (its index) and the rest of the path; a path outside
    /// every root is refused (rule `file-root`), counted and logged.
    pub(crate) fn granted_root<'a>(&self, path: &'a str) -> Result<(usize, &'a Path), Error> {
        self.policy.file_root(path).map_err(|why| self.refuse_file(path, why))
    }

    /// The error of opening `path` beneath root `index`: a refusal (rule `file-root`) when it
    /// resolved out of the root, else the I/O error.
    pub(crate) fn open_failed(&self, path: &str, index: usize, errno: Errno) -> Error {
        match errno {
            Errno::XDEV | Errno::LOOP => {
                let root = &self.policy.files[index];
                self.refuse_file(path, format!("it resolves out of the root {} ({}) through `..` or a symlink", root.grant, root.path.display()))
            }
            errno => io_error(path, errno.into()),
        }
    }

    fn refuse_file(&self, path: &str, why: String) -> Error {
        let message = format!("{path}: refused by the file rule `file-root`: {why}");
        self.denied("file-root", &message);
        Error::Denied(message)
    }
}

/// The directory handles of a check's file roots, each opened on first use.
pub struct RootDirs {
    roots: Vec<(PathBuf, OnceLock<OwnedFd>)>,
}

impl RootDirs {
    pub fn new(files: &[FileRoot]) -> Self {
        RootDirs { roots: files.iter().map(|root| (root.path.clone(), OnceLock::new())).collect() }
    }

    /// Opens `rest` beneath root `index` (see the module's doc).
    pub fn open(&self, index: usize, rest: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
        let (root_path, handle) = &self.roots[index];
        let root = match handle.get() {
            Some(fd) => fd,
            None => {
                let fd = rustix::fs::open(root_path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
                handle.get_or_init(|| fd)
            }
        };
        let rest = if rest.as_os_str().is_empty() { Path::new(".") } else { rest };
        let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
        match rustix::fs::openat2(root.as_fd(), rest, flags | OFlags::CLOEXEC, Mode::empty(), resolve) {
            // Kernels before 5.6: the resolved path must still lie under the resolved root
            // (racy against a symlink swapped in between, where openat2 is not).
            Err(Errno::NOSYS) => {
                let root = std::fs::canonicalize(root_path).map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
                let target = std::fs::canonicalize(root_path.join(rest)).map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
                if !target.starts_with(&root) {
                    return Err(Errno::XDEV);
                }
                rustix::fs::open(&target, flags | OFlags::CLOEXEC, Mode::empty())
            }
            result => result,
        }
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
    let (file, _) = regular_file::open(Path::new(path)).map_err(|e| match e {
        ReadError::Io(e) => io_error(path, e),
        other => Error::Io(format!("{path}: {other}")),
    })?;
    read_open_file(path, file, max_bytes)
}

/// Reads an opened file whole if it is a regular file of at most `max_bytes`.
pub(crate) fn read_open_file(path: &str, file: File, max_bytes: u64) -> Result<Vec<u8>, Error> {
    let meta = file.metadata().map_err(|e| io_error(path, e))?;
    if !meta.is_file() {
        return Err(Error::Io(format!("{path}: not a regular file")));
    }
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

/// Lists an opened directory, sorted by name.
fn list_open_dir(path: &str, dir: OwnedFd) -> Result<Vec<DirEntry>, Error> {
    let mut entries = Vec::new();
    let mut reader = rustix::fs::Dir::new(dir).map_err(|e| io_error(path, e.into()))?;
    while let Some(entry) = reader.next() {
        let entry = entry.map_err(|e| io_error(path, e.into()))?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        if entries.len() == MAX_DIR_ENTRIES {
            return Err(Error::Io(format!("{path}: more than {MAX_DIR_ENTRIES} entries")));
        }
        let kind = match entry.file_type() {
            rustix::fs::FileType::Symlink => EntryKind::Symlink,
            rustix::fs::FileType::Directory => EntryKind::Directory,
            rustix::fs::FileType::RegularFile => EntryKind::File,
            _ => EntryKind::Other,
        };
        entries.push(DirEntry { name: String::from_utf8_lossy(name).into_owned(), kind });
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

pub(crate) fn io_error(path: &str, error: std::io::Error) -> Error {
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
