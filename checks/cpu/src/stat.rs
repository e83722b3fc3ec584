//! `/proc/stat`: the CPU time lines and the context switch counter.

/// The ticks one `cpu` line counts in each state. Kernels before 2.6.33 print fewer columns:
/// the missing ones are 0, as gopsutil reads them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
    pub guest: u64,
    pub guest_nice: u64,
}

impl CpuTimes {
    /// The columns after the line's name.
    fn parse(columns: &[&str]) -> Result<CpuTimes, String> {
        // user, nice, system and idle have been there since Linux 1.0.
        if columns.len() < 4 {
            return Err(format!("expected at least 4 columns, found {}", columns.len()));
        }
        let mut values = [0u64; 10];
        for (index, (value, column)) in values.iter_mut().zip(columns).enumerate() {
            *value = column.parse().map_err(|_| format!("column {} ({column:?}) is not a number", index + 1))?;
        }
        let [user, nice, system, idle, iowait, irq, softirq, steal, guest, guest_nice] = values;
        Ok(CpuTimes { user, nice, system, idle, iowait, irq, softirq, steal, guest, guest_nice })
    }

    /// The ticks Datadog's percentages divide by: every state but guest time, which the kernel
    /// already counts in user (and guest_nice in nice).
    pub fn busy_and_idle(&self) -> u64 {
        self.user + self.nice + self.system + self.idle + self.iowait + self.irq + self.softirq + self.steal
    }

    /// The sample as kept in the instance's state: the ten counters, space-separated.
    pub fn to_state(&self) -> String {
        self.columns().map(|value| value.to_string()).collect::<Vec<_>>().join(" ")
    }

    /// A sample kept by [`to_state`](Self::to_state); `None` when it is not one.
    pub fn from_state(text: &str) -> Option<CpuTimes> {
        let columns: Vec<&str> = text.split(' ').collect();
        if columns.len() != 10 {
            return None;
        }
        CpuTimes::parse(&columns).ok()
    }

    fn columns(&self) -> impl Iterator<Item = u64> {
        [
            self.user,
            self.nice,
            self.system,
            self.idle,
            self.iowait,
            self.irq,
            self.softirq,
            self.steal,
            self.guest,
            self.guest_nice,
        ]
        .into_iter()
    }
}

/// What the check reads of `/proc/stat`.
#[derive(Debug, PartialEq)]
pub struct Stat {
    /// The aggregate `cpu` line: every CPU together.
    pub total: CpuTimes,
    /// The `cpuN` lines, by name, in the file's order.
    pub per_cpu: Vec<(String, CpuTimes)>,
    /// `ctxt`: context switches since boot.
    pub context_switches: Option<u64>,
}

impl Stat {
    /// Parses the file; a malformed `cpu` line is an error naming it (a wrong number would be
    /// reported as a real one).
    pub fn parse(text: &str) -> Result<Stat, String> {
        let mut total = None;
        let mut per_cpu = Vec::new();
        let mut context_switches = None;
        for line in text.lines() {
            let mut fields = line.split_whitespace();
            let Some(name) = fields.next() else { continue };
            if name == "ctxt" {
                context_switches = fields.next().and_then(|value| value.parse().ok());
            } else if let Some(index) = name.strip_prefix("cpu") {
                let columns: Vec<&str> = fields.collect();
                let times = CpuTimes::parse(&columns).map_err(|why| format!("line {name:?}: {why}"))?;
                if index.is_empty() {
                    total = Some(times);
                } else {
                    per_cpu.push((name.to_string(), times));
                }
            }
        }
        let total = total.ok_or("no aggregate `cpu` line")?;
        Ok(Stat { total, per_cpu, context_switches })
    }
}
