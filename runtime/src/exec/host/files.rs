//! `files`: read-only access to host files and directories.
//!
//! Only regular files are read (a FIFO or device could block or never end), up to a size limit.
//! procfs and sysfs files are read synchronously: they are generated in memory and never wait
//! on a disk, and a blocking-pool hop would cost more than the read itself.

use std::io::Read;

use crate::exec::bindings::adrt::check::files::{DirEntry, EntryKind, Error, Host};
use crate::exec::policy::Import;
use crate::exec::store::StoreState;

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

fn read_file(path: &str) -> Result<Vec<u8>, Error> {
    let file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    let meta = file.metadata().map_err(|e| io_error(path, e))?;
    if !meta.is_file() {
        return Err(Error::Io(format!("{path}: not a regular file")));
    }
    let mut bytes = Vec::with_capacity(meta.len().min(MAX_FILE_BYTES) as usize);
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| io_error(path, e))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Error::Io(format!("{path}: larger than {} MiB", MAX_FILE_BYTES >> 20)));
    }
    Ok(bytes)
}

fn list_dir(path: &str) -> Result<Vec<DirEntry>, Error> {
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

fn io_error(path: &str, error: std::io::Error) -> Error {
    match error.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound(path.to_string()),
        std::io::ErrorKind::PermissionDenied => Error::Denied(format!("{path}: {error}")),
        _ => Error::Io(format!("{path}: {error}")),
    }
}
