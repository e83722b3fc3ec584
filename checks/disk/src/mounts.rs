//! The mount table (`/proc/<pid>/mounts`, fstab's format).

/// One mounted filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub device: String,
    pub mount_point: String,
    pub file_system: String,
    pub options: String,
}

/// The mounts of a table, and how many lines were not mounts.
pub struct Parsed {
    pub mounts: Vec<Mount>,
    pub skipped: usize,
}

pub fn parse(text: &str) -> Parsed {
    let mut parsed = Parsed { mounts: Vec::new(), skipped: 0 };
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let mut fields = line.split_whitespace();
        match (fields.next(), fields.next(), fields.next(), fields.next()) {
            (Some(device), Some(mount_point), Some(file_system), Some(options)) => parsed.mounts.push(Mount {
                device: unescape(device),
                mount_point: unescape(mount_point),
                file_system: unescape(file_system),
                options: options.to_string(),
            }),
            _ => parsed.skipped += 1,
        }
    }
    parsed
}

/// The kernel writes space, tab, newline and backslash as 3-digit octal escapes (`\040`).
pub fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escape = bytes.get(index + 1..index + 4).filter(|digits| bytes[index] == b'\\' && digits.iter().all(|d| (b'0'..=b'7').contains(d)));
        match escape.and_then(|digits| u8::from_str_radix(std::str::from_utf8(digits).ok()?, 8).ok()) {
            Some(byte) => {
                out.push(byte);
                index += 4;
            }
            None => {
                out.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
