//! `/proc/diskstats`: one line of counters per block device, and the sample a run keeps.

use std::collections::BTreeMap;

/// diskstats counts sectors of 512 bytes whatever the device's.
pub const SECTOR_BYTES: f64 = 512.0;

/// The counters of one device the check uses (Documentation/admin-guide/iostats.rst).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskCounters {
    pub reads: u64,
    pub reads_merged: u64,
    pub sectors_read: u64,
    pub read_ms: u64,
    pub writes: u64,
    pub writes_merged: u64,
    pub sectors_written: u64,
    pub write_ms: u64,
    pub io_ms: u64,
    pub weighted_io_ms: u64,
}

/// The columns kept, after `major minor name`: every one up to the weighted time but the I/Os
/// in progress (a gauge, not a counter).
const KEPT_COLUMNS: usize = 11;

impl DiskCounters {
    fn parse(columns: &[&str]) -> Result<DiskCounters, String> {
        if columns.len() < KEPT_COLUMNS {
            return Err(format!("expected at least {KEPT_COLUMNS} counters, found {}", columns.len()));
        }
        let mut values = [0u64; KEPT_COLUMNS];
        for (index, (value, column)) in values.iter_mut().zip(columns).enumerate() {
            *value = column.parse().map_err(|_| format!("counter {} ({column:?}) is not a number", index + 1))?;
        }
        let [reads, reads_merged, sectors_read, read_ms, writes, writes_merged, sectors_written, write_ms, _in_progress, io_ms, weighted_io_ms] =
            values;
        Ok(DiskCounters { reads, reads_merged, sectors_read, read_ms, writes, writes_merged, sectors_written, write_ms, io_ms, weighted_io_ms })
    }

    fn columns(&self) -> [u64; 10] {
        [
            self.reads,
            self.reads_merged,
            self.sectors_read,
            self.read_ms,
            self.writes,
            self.writes_merged,
            self.sectors_written,
            self.write_ms,
            self.io_ms,
            self.weighted_io_ms,
        ]
    }
}

/// The devices of a diskstats file, and the lines that were not device lines.
pub struct Parsed {
    pub devices: BTreeMap<String, DiskCounters>,
    pub skipped: Vec<String>,
}

pub fn parse(text: &str) -> Parsed {
    let mut parsed = Parsed { devices: BTreeMap::new(), skipped: Vec::new() };
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let result = match fields.as_slice() {
            [_major, _minor, name, columns @ ..] => DiskCounters::parse(columns).map(|counters| (name.to_string(), counters)),
            _ => Err("fewer than 3 fields".to_string()),
        };
        match result {
            Ok((name, counters)) => {
                parsed.devices.insert(name, counters);
            }
            Err(why) => parsed.skipped.push(format!("{:?}: {why}", fields.get(2).unwrap_or(&""))),
        }
    }
    parsed
}

/// The counters of every device at one time, as a run keeps them for the next.
#[derive(Debug, PartialEq)]
pub struct Sample {
    /// When they were read: the host's monotonic clock, in milliseconds.
    pub millis: u64,
    pub devices: BTreeMap<String, DiskCounters>,
}

impl Sample {
    /// `<millis>` then one `<device> <10 counters>` line per device.
    pub fn to_state(&self) -> String {
        let mut text = self.millis.to_string();
        for (name, counters) in &self.devices {
            text.push('\n');
            text.push_str(name);
            for value in counters.columns() {
                text.push(' ');
                text.push_str(&value.to_string());
            }
        }
        text
    }

    /// A sample kept by [`to_state`](Self::to_state); `None` when it is not one.
    pub fn from_state(text: &str) -> Option<Sample> {
        let mut lines = text.lines();
        let millis = lines.next()?.parse().ok()?;
        let mut devices = BTreeMap::new();
        for line in lines {
            let (name, rest) = line.split_once(' ')?;
            let values: Vec<u64> = rest.split(' ').map(str::parse).collect::<Result<_, _>>().ok()?;
            let [reads, reads_merged, sectors_read, read_ms, writes, writes_merged, sectors_written, write_ms, io_ms, weighted_io_ms] =
                values[..]
            else {
                return None;
            };
            let counters = DiskCounters { reads, reads_merged, sectors_read, read_ms, writes, writes_merged, sectors_written, write_ms, io_ms, weighted_io_ms };
            devices.insert(name.to_string(), counters);
        }
        Some(Sample { millis, devices })
    }
}

/// How much a counter grew, as Datadog computes it: a counter that went back wrapped, at 32
/// bits when it was below 2^32 (the kernel keeps some of them in 32 bits even on 64-bit
/// machines), at 64 bits otherwise.
pub fn increment(now: u64, before: u64) -> u64 {
    if now >= before {
        return now - before;
    }
    let max = if before <= u64::from(u32::MAX) { u64::from(u32::MAX) } else { u64::MAX };
    now.wrapping_add(max - before).wrapping_add(1)
}
