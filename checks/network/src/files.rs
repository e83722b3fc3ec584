//! Reading host files through the host's file import, with the logging each kind of file needs.

use adrt_check_sdk::{Context, Describe, FileError};

/// A host file as text. procfs and sysfs are ASCII, so this normally takes the bytes as they are.
pub fn read_text(ctx: &mut Context<'_>, path: &str) -> Result<String, FileError> {
    let bytes = ctx.read_file(path)?;
    Ok(String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// A file the check can do without. `None` when it cannot be read: logged at debug level when
/// its absence is normal (`missing_is_normal` and not found), as a warning otherwise.
pub fn read_optional(ctx: &mut Context<'_>, path: &str, missing_is_normal: bool) -> Option<String> {
    match read_text(ctx, path) {
        Ok(text) => Some(text),
        Err(FileError::NotFound(_)) if missing_is_normal => {
            ctx.debug(&format!("{path} does not exist, skipping it"));
            None
        }
        Err(e) => {
            ctx.warn(&format!("cannot read {path}, skipping its metrics: {}", e.describe()));
            None
        }
    }
}

/// A sysfs/procfs file holding one integer. An unreadable file is normal (sysfs answers EINVAL
/// for `speed` of virtual interfaces and `carrier` of down ones): a debug line. Text that is not
/// an integer is a warning.
pub fn read_int(ctx: &mut Context<'_>, path: &str) -> Option<i64> {
    let text = match read_text(ctx, path) {
        Ok(text) => text,
        Err(e) => {
            ctx.debug(&format!("cannot read {path}: {}", e.describe()));
            return None;
        }
    };
    match text.trim().parse() {
        Ok(value) => Some(value),
        Err(_) => {
            // The content is not echoed: the path may lead anywhere on the host.
            ctx.warn(&format!("{path} does not hold an integer ({} bytes)", text.len()));
            None
        }
    }
}
