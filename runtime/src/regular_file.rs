//! Reading files whose path someone else chose (a pods file, a token, a CA bundle): opened
//! non-blocking so that a FIFO cannot hold the open, refused unless regular (a device or FIFO
//! may never end), and read up to a bound.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("not a regular file")]
    NotRegular,
    #[error("larger than {max_bytes} bytes")]
    TooLarge { max_bytes: u64 },
}

/// Opens a regular file for reading; anything else is [`ReadError::NotRegular`].
pub fn open(path: &Path) -> Result<(File, std::fs::Metadata), ReadError> {
    // Non-blocking, so that opening a FIFO does not wait for a writer before the type check.
    let file = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular);
    }
    Ok((file, meta))
}

/// The whole content of a regular file of at most `max_bytes`.
pub fn read(path: &Path, max_bytes: u64) -> Result<Vec<u8>, ReadError> {
    let (file, meta) = open(path)?;
    read_file(file, &meta, max_bytes)
}

/// The whole content of an opened file, if regular and of at most `max_bytes`.
pub fn read_opened(file: File, max_bytes: u64) -> Result<Vec<u8>, ReadError> {
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular);
    }
    read_file(file, &meta, max_bytes)
}

fn read_file(file: File, meta: &std::fs::Metadata, max_bytes: u64) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::with_capacity(meta.len().min(max_bytes + 1) as usize);
    file.take(max_bytes + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(ReadError::TooLarge { max_bytes });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_regular_files_within_the_bound_only() {
        let path = adrt_testkit::scratch_dir("regular").join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read(&path, 10).unwrap(), b"0123456789");
        assert!(matches!(read(&path, 9), Err(ReadError::TooLarge { max_bytes: 9 })));
        assert!(matches!(read(Path::new("/dev/zero"), 1 << 20), Err(ReadError::NotRegular)));
        assert!(matches!(read(Path::new("/nonexistent/adrt"), 1), Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound));
    }
}
