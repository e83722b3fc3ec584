//! `filesystems` (adrt:check 0.1.1): how full the filesystem holding a path is, for disk checks.
//!
//! The path is allowed as `files` allows one — under the check's file roots, opened beneath its
//! root (see `files.rs`) — but opened `O_PATH`: nothing of the file is read, and a FIFO or a
//! device is never opened. The numbers are `fstatvfs` of that handle. A filesystem may hang (an
//! NFS server gone): the open and the call run on the blocking pool, and the check gets an error
//! at its deadline rather than a thread of the runtime stuck.

use rustix::fs::{OFlags, StatVfs, StatVfsMountFlags};

use crate::exec::bindings::adrt::check::files::Error;
use crate::exec::bindings::adrt::check::filesystems::{FilesystemUsage, Host};
use crate::exec::policy::Import;
use crate::exec::store::StoreState;

impl Host for StoreState {
    async fn usage(&mut self, path: String) -> Result<FilesystemUsage, Error> {
        self.allow(Import::FilesystemUsage { path: &path }).map_err(Error::Denied)?;
        let (index, rest) = self.granted_root(&path)?;
        let (roots, rest) = (self.roots.clone(), rest.to_path_buf());
        let stat = tokio::task::spawn_blocking(move || {
            let handle = roots.open(index, &rest, OFlags::PATH)?;
            rustix::fs::fstatvfs(&handle)
        });
        match tokio::time::timeout(self.call.remaining(), stat).await {
            Ok(Ok(Ok(stat))) => Ok(usage(&stat)),
            Ok(Ok(Err(errno))) => Err(self.open_failed(&path, index, errno)),
            Ok(Err(join)) => Err(Error::Io(format!("{path}: {join}"))),
            Err(_) => Err(Error::Io(format!("{path}: the filesystem did not answer before the check's deadline"))),
        }
    }
}

/// statvfs's counts of `f_frsize` blocks, in bytes.
fn usage(stat: &StatVfs) -> FilesystemUsage {
    let bytes = |blocks: u64| blocks.saturating_mul(stat.f_frsize);
    FilesystemUsage {
        total_bytes: bytes(stat.f_blocks),
        free_bytes: bytes(stat.f_bfree),
        available_bytes: bytes(stat.f_bavail),
        total_inodes: stat.f_files,
        free_inodes: stat.f_ffree,
        available_inodes: stat.f_favail,
        block_size: stat.f_frsize,
        read_only: stat.f_flag.contains(StatVfsMountFlags::RDONLY),
    }
}
