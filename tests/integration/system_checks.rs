//! The node's system checks (cpu, memory, load, disk, io, uptime) through `adrt check` against
//! this machine's own procfs: every name and type as Datadog's checks submit them (the tables
//! below, from the Datadog agent's Go sources), and values that agree with an independent
//! reading made here — /proc read by the test before and after the check ran, Python's
//! `os.statvfs` for the disks. Expected values are computed here, never taken from the check.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Output;

use serde_json::Value;

use crate::util::{adrt, scratch_dir};

/// datadog-agent pkg/collector/corechecks/system/cpu/cpu/cpu.go (`report_total_percpu` off).
const CPU: &[(&str, &str)] = &[
    ("system.cpu.context_switches", "monotonic_count"),
    ("system.cpu.num_cores", "gauge"),
    ("system.cpu.user", "gauge"),
    ("system.cpu.system", "gauge"),
    ("system.cpu.interrupt", "gauge"),
    ("system.cpu.iowait", "gauge"),
    ("system.cpu.idle", "gauge"),
    ("system.cpu.stolen", "gauge"),
    ("system.cpu.guest", "gauge"),
    ("system.cpu.user.total", "gauge"),
    ("system.cpu.nice.total", "gauge"),
    ("system.cpu.system.total", "gauge"),
    ("system.cpu.idle.total", "gauge"),
    ("system.cpu.iowait.total", "gauge"),
    ("system.cpu.irq.total", "gauge"),
    ("system.cpu.softirq.total", "gauge"),
    ("system.cpu.steal.total", "gauge"),
    ("system.cpu.guest.total", "gauge"),
    ("system.cpu.guestnice.total", "gauge"),
];

/// datadog-agent pkg/collector/corechecks/system/memory/memory_nix.go (Linux, without
/// `collect_memory_pressure`).
const MEMORY: &[(&str, &str)] = &[
    ("system.mem.total", "gauge"),
    ("system.mem.free", "gauge"),
    ("system.mem.used", "gauge"),
    ("system.mem.usable", "gauge"),
    ("system.mem.pct_usable", "gauge"),
    ("system.mem.cached", "gauge"),
    ("system.mem.buffered", "gauge"),
    ("system.mem.shared", "gauge"),
    ("system.mem.slab", "gauge"),
    ("system.mem.slab_reclaimable", "gauge"),
    ("system.mem.page_tables", "gauge"),
    ("system.mem.commit_limit", "gauge"),
    ("system.mem.committed_as", "gauge"),
    ("system.swap.cached", "gauge"),
    ("system.swap.total", "gauge"),
    ("system.swap.free", "gauge"),
    ("system.swap.used", "gauge"),
    ("system.swap.pct_free", "gauge"),
    ("system.swap.swap_in", "rate"),
    ("system.swap.swap_out", "rate"),
];

/// datadog-agent pkg/collector/corechecks/system/cpu/load/load.go.
const LOAD: &[(&str, &str)] = &[
    ("system.load.1", "gauge"),
    ("system.load.5", "gauge"),
    ("system.load.15", "gauge"),
    ("system.load.norm.1", "gauge"),
    ("system.load.norm.5", "gauge"),
    ("system.load.norm.15", "gauge"),
];

/// datadog-agent pkg/collector/corechecks/system/uptime/uptime.go.
const UPTIME: &[(&str, &str)] = &[("system.uptime", "gauge")];

/// datadog-agent pkg/collector/corechecks/system/disk/io/iostats_nix.go.
const IO: &[(&str, &str)] = &[
    ("system.io.r_s", "rate"),
    ("system.io.w_s", "rate"),
    ("system.io.rrqm_s", "rate"),
    ("system.io.wrqm_s", "rate"),
    ("system.io.rkb_s", "gauge"),
    ("system.io.wkb_s", "gauge"),
    ("system.io.avg_rq_sz", "gauge"),
    ("system.io.await", "gauge"),
    ("system.io.r_await", "gauge"),
    ("system.io.w_await", "gauge"),
    ("system.io.avg_q_sz", "gauge"),
    ("system.io.svctm", "gauge"),
    ("system.io.util", "gauge"),
    ("system.io.block_in", "rate"),
    ("system.io.block_out", "rate"),
];

/// datadog-agent pkg/collector/corechecks/system/disk/diskv2/disk.go and disk_nix.go (the Go
/// port of integrations-core's `disk`, same names and types).
const DISK: &[(&str, &str)] = &[
    ("system.disk.total", "gauge"),
    ("system.disk.used", "gauge"),
    ("system.disk.free", "gauge"),
    ("system.disk.utilized", "gauge"),
    ("system.disk.in_use", "gauge"),
    ("system.fs.inodes.total", "gauge"),
    ("system.fs.inodes.used", "gauge"),
    ("system.fs.inodes.free", "gauge"),
    ("system.fs.inodes.utilized", "gauge"),
    ("system.fs.inodes.in_use", "gauge"),
    ("system.disk.read_time", "monotonic_count"),
    ("system.disk.write_time", "monotonic_count"),
    ("system.disk.read_time_pct", "rate"),
    ("system.disk.write_time_pct", "rate"),
];

/// `adrt check <name> --json` with a cache of its own, compiled by a first run so that the
/// measured run starts at once; returns the runs.
struct Checker {
    cache: PathBuf,
    config: Option<PathBuf>,
}

impl Checker {
    fn new(name: &str, config: Option<&str>) -> Checker {
        let cache = scratch_dir("system-checks-cache");
        let config = config.map(|yaml| {
            let path = cache.join("adrt.yaml");
            std::fs::write(&path, yaml).unwrap();
            path
        });
        let checker = Checker { cache, config };
        checker.output(name, "{}", &[]);
        checker
    }

    fn output(&self, name: &str, instance: &str, extra: &[&str]) -> Output {
        let mut command = adrt();
        command.args(["check", name, "--json", "--instance", instance]).args(extra).arg("--cache-dir").arg(&self.cache);
        // No /etc/adrt/adrt.yaml of the machine: the defaults, or the test's settings.
        command.arg("--config").arg(self.config.clone().unwrap_or_else(|| self.cache.join("none.yaml")));
        if self.config.is_none() {
            std::fs::write(self.cache.join("none.yaml"), "{}\n").unwrap();
        }
        command.output().expect("running adrt")
    }

    fn runs(&self, name: &str, instance: &str, extra: &[&str]) -> Vec<Value> {
        let out = self.output(name, instance, extra);
        assert!(out.status.success(), "adrt check {name} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
        report["runs"].as_array().unwrap().clone()
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.cache);
    }
}

fn metrics<'a>(run: &'a Value, name: &str) -> Vec<&'a Value> {
    run["metrics"].as_array().unwrap().iter().filter(|m| m["name"] == name).collect()
}

/// The one untagged series of `name`.
fn value(run: &Value, name: &str) -> f64 {
    let found = metrics(run, name);
    assert_eq!(found.len(), 1, "{name}: {found:#?}");
    found[0]["value"].as_f64().unwrap()
}

/// The run reports exactly the names of `table`, each with its type.
fn assert_datadog_names_and_types(run: &Value, table: &[(&str, &str)]) {
    let expected: BTreeMap<&str, &str> = table.iter().copied().collect();
    let mut reported: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for metric in run["metrics"].as_array().unwrap() {
        reported.entry(metric["name"].as_str().unwrap().into()).or_default().insert(metric["type"].as_str().unwrap().into());
    }
    let reported: BTreeMap<&str, Vec<&str>> =
        reported.iter().map(|(name, types)| (name.as_str(), types.iter().map(String::as_str).collect())).collect();
    let expected: BTreeMap<&str, Vec<&str>> = expected.into_iter().map(|(name, kind)| (name, vec![kind])).collect();
    assert_eq!(reported, expected);
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// `Name: value kB` lines of /proc/meminfo, in KiB.
fn meminfo() -> BTreeMap<String, f64> {
    read("/proc/meminfo")
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.to_string(), value.trim().trim_end_matches(" kB").parse().ok()?))
        })
        .collect()
}

fn vmstat() -> BTreeMap<String, f64> {
    read("/proc/vmstat").lines().filter_map(|line| line.split_once(' ')).map(|(k, v)| (k.to_string(), v.parse().unwrap())).collect()
}

fn processors() -> f64 {
    read("/proc/cpuinfo").lines().filter(|l| l.split(':').next().is_some_and(|k| k.trim_end() == "processor")).count() as f64
}

fn within(value: f64, low: f64, high: f64, slack: f64, what: &str) {
    assert!(value >= low - slack && value <= high + slack, "{what}: {value} not within [{low}, {high}] ± {slack}");
}

#[test]
fn uptime_is_the_whole_seconds_of_proc_uptime() {
    let checker = Checker::new("uptime", None);
    let seconds = || read("/proc/uptime").split_whitespace().next().unwrap().parse::<f64>().unwrap();
    let before = seconds();
    let runs = checker.runs("uptime", "{}", &[]);
    let after = seconds();
    assert_datadog_names_and_types(&runs[0], UPTIME);
    within(value(&runs[0], "system.uptime"), before.floor(), after.floor(), 0.0, "system.uptime");
}

#[test]
fn load_is_proc_loadavg_and_its_share_per_cpu() {
    let checker = Checker::new("load", None);
    let averages = || -> Vec<f64> { read("/proc/loadavg").split_whitespace().take(3).map(|v| v.parse().unwrap()).collect() };
    let before = averages();
    let runs = checker.runs("load", "{}", &[]);
    let after = averages();
    assert_datadog_names_and_types(&runs[0], LOAD);
    let cpus = processors();
    for (index, minutes) in ["1", "5", "15"].iter().enumerate() {
        // The kernel updates the averages every 5 s: the check read one of the two readings.
        let load = value(&runs[0], &format!("system.load.{minutes}"));
        assert!(load == before[index] || load == after[index], "system.load.{minutes}: {load} is neither {before:?} nor {after:?}");
        let norm = value(&runs[0], &format!("system.load.norm.{minutes}"));
        assert!((norm - load / cpus).abs() < 1e-12, "system.load.norm.{minutes}: {norm} != {load} / {cpus}");
    }
}

#[test]
fn memory_agrees_with_proc_meminfo() {
    let checker = Checker::new("memory", None);
    let (before, vm_before) = (meminfo(), vmstat());
    let runs = checker.runs("memory", "{}", &["--times", "2", "--pause", "1000"]);
    let (after, vm_after) = (meminfo(), vmstat());
    assert!(metrics(&runs[0], "system.swap.swap_in").is_empty(), "a rate needs two samples");
    let run = &runs[1];
    assert_datadog_names_and_types(run, MEMORY);

    // Memory moves while the machine builds: a value lies between the two readings, give or
    // take 1% of the memory; counters that do not move (totals, limits) agree exactly.
    let slack = before["MemTotal"] / 1024.0 / 100.0;
    let expected = |fields: &BTreeMap<String, f64>| -> Vec<(&'static str, f64)> {
        let mib = |name: &str| fields[name] / 1024.0;
        let (total, free) = (mib("MemTotal"), mib("MemFree"));
        let (swap_total, swap_free) = (mib("SwapTotal"), mib("SwapFree"));
        vec![
            ("system.mem.total", total),
            ("system.mem.free", free),
            ("system.mem.used", total - free),
            ("system.mem.usable", mib("MemAvailable")),
            ("system.mem.cached", mib("Cached") + mib("SReclaimable")),
            ("system.mem.buffered", mib("Buffers")),
            ("system.mem.shared", mib("Shmem")),
            ("system.mem.slab", mib("Slab")),
            ("system.mem.slab_reclaimable", mib("SReclaimable")),
            ("system.mem.page_tables", mib("PageTables")),
            ("system.mem.commit_limit", mib("CommitLimit")),
            ("system.mem.committed_as", mib("Committed_AS")),
            ("system.swap.cached", mib("SwapCached")),
            ("system.swap.total", swap_total),
            ("system.swap.free", swap_free),
            ("system.swap.used", swap_total - swap_free),
        ]
    };
    for ((name, low), (_, high)) in expected(&before).into_iter().zip(expected(&after)) {
        let exact = ["system.mem.total", "system.mem.commit_limit", "system.swap.total"].contains(&name);
        within(value(run, name), low.min(high), low.max(high), if exact { 0.0 } else { slack }, name);
    }
    let pct_usable = value(run, "system.mem.pct_usable");
    assert!((pct_usable - value(run, "system.mem.usable") / value(run, "system.mem.total")).abs() < 1e-9);
    let swap_total = value(run, "system.swap.total");
    let pct_free = if swap_total == 0.0 { 1.0 } else { value(run, "system.swap.free") / swap_total };
    assert!((value(run, "system.swap.pct_free") - pct_free).abs() < 1e-9);
    // Swapped pages (4 KiB, in MiB) per second over at least the 1 s pause.
    for (name, counter) in [("system.swap.swap_in", "pswpin"), ("system.swap.swap_out", "pswpout")] {
        within(value(run, name), 0.0, (vm_after[counter] - vm_before[counter]) * 4.0 / 1024.0, 1e-9, name);
    }
}

/// /proc/stat's aggregate `cpu` line (ten counters) and `ctxt`.
fn stat() -> (Vec<f64>, f64) {
    let text = read("/proc/stat");
    let cpu = text.lines().next().unwrap().split_whitespace().skip(1).map(|v| v.parse().unwrap()).collect();
    let ctxt = text.lines().find_map(|l| l.strip_prefix("ctxt ")).unwrap().parse().unwrap();
    (cpu, ctxt)
}

#[test]
fn cpu_percentages_agree_with_proc_stat_deltas() {
    let checker = Checker::new("cpu", None);
    let (before, ctxt_before) = stat();
    let runs = checker.runs("cpu", "{}", &["--times", "2", "--pause", "2000"]);
    let (after, ctxt_after) = stat();
    let percentages = ["system.cpu.user", "system.cpu.system", "system.cpu.interrupt", "system.cpu.iowait", "system.cpu.idle"];
    assert!(percentages.iter().all(|name| metrics(&runs[0], name).is_empty()), "the first run has no previous sample");
    let run = &runs[1];
    assert_datadog_names_and_types(run, CPU);

    // The test's reading brackets the check's two samples (2 s apart): the shares agree within
    // what the few milliseconds around them can move.
    let delta: Vec<f64> = before.iter().zip(&after).map(|(b, a)| a - b).collect();
    let [user, nice, system, idle, iowait, irq, softirq, steal, guest, _] = delta[..] else { panic!("{delta:?}") };
    let elapsed = user + nice + system + idle + iowait + irq + softirq + steal;
    let share = |ticks: f64| ticks * 100.0 / elapsed;
    for (name, expected) in [
        ("system.cpu.user", share(user + nice)),
        ("system.cpu.system", share(system + irq + softirq)),
        ("system.cpu.interrupt", share(irq + softirq)),
        ("system.cpu.iowait", share(iowait)),
        ("system.cpu.idle", share(idle)),
        ("system.cpu.stolen", share(steal)),
        ("system.cpu.guest", share(guest)),
    ] {
        let reported = value(run, name);
        assert!((reported - expected).abs() <= 10.0, "{name}: {reported} vs {expected} from /proc/stat");
    }
    let states: f64 = ["system.cpu.user", "system.cpu.system", "system.cpu.iowait", "system.cpu.idle", "system.cpu.stolen"]
        .iter()
        .map(|name| value(run, name))
        .sum();
    assert!((states - 100.0).abs() < 1e-6, "the states add up to {states}");

    // The cumulative seconds of the aggregate line, between the two readings.
    for (index, state) in ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guestnice"].iter().enumerate() {
        let name = format!("system.cpu.{state}.total");
        let series = metrics(run, &name);
        assert_eq!(series.len(), 1);
        assert_eq!(series[0]["tags"], serde_json::json!(["core:cpu-total"]));
        within(series[0]["value"].as_f64().unwrap(), before[index] / 100.0, after[index] / 100.0, 1e-9, &name);
    }
    assert_eq!(value(run, "system.cpu.num_cores"), processors());
    // A monotonic count is the change between the check's samples.
    within(value(run, "system.cpu.context_switches"), 1.0, ctxt_after - ctxt_before, 0.0, "system.cpu.context_switches");
}

/// /proc/diskstats: the counters of each device.
fn diskstats() -> BTreeMap<String, Vec<f64>> {
    read("/proc/diskstats")
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields[2].to_string(), fields[3..].iter().map(|v| v.parse().unwrap()).collect())
        })
        .collect()
}

#[test]
fn io_agrees_with_proc_diskstats() {
    let checker = Checker::new("io", None);
    let (before, vm_before) = (diskstats(), vmstat());
    let runs = checker.runs("io", "{}", &["--times", "2", "--pause", "1000"]);
    let (after, vm_after) = (diskstats(), vmstat());
    let run = &runs[1];
    assert_datadog_names_and_types(run, IO);

    let devices: BTreeSet<String> = before.keys().filter(|d| after.contains_key(*d)).cloned().collect();
    let reported: BTreeSet<String> = metrics(run, "system.io.r_s")
        .iter()
        .map(|m| m["tags"].as_array().unwrap().iter().find_map(|t| t.as_str()?.strip_prefix("device:")).unwrap().to_string())
        .collect();
    assert_eq!(reported, devices);
    // Over at least the 1 s pause, a rate is at most the change the test saw; and so is a
    // throughput in KiB/s (sectors of 512 bytes), give or take the rounding to 0.01.
    for device in &devices {
        let change = |column: usize| after[device][column] - before[device][column];
        let tagged = |name: &str| {
            let found: Vec<f64> = metrics(run, name)
                .iter()
                .filter(|m| m["tags"].as_array().unwrap().iter().any(|t| t == &format!("device:{device}")))
                .map(|m| m["value"].as_f64().unwrap())
                .collect();
            assert_eq!(found.len(), 1, "{name} of {device}");
            found[0]
        };
        for (name, column) in [("system.io.r_s", 0), ("system.io.rrqm_s", 1), ("system.io.w_s", 4), ("system.io.wrqm_s", 5)] {
            within(tagged(name), 0.0, change(column), 1e-9, &format!("{name} of {device}"));
        }
        within(tagged("system.io.rkb_s"), 0.0, change(2) / 2.0, 0.01, &format!("rkb_s of {device}"));
        within(tagged("system.io.wkb_s"), 0.0, change(6) / 2.0, 0.01, &format!("wkb_s of {device}"));
        // The share of the time the device was busy, in percent.
        within(tagged("system.io.util"), 0.0, change(9) / 10.0, 0.01, &format!("util of {device}"));
        if change(0) + change(4) == 0.0 {
            assert_eq!(tagged("system.io.await"), 0.0, "an idle {device} waited");
        }
    }
    for (name, counter) in [("system.io.block_in", "pgpgin"), ("system.io.block_out", "pgpgout")] {
        within(value(run, name), 0.0, (vm_after[counter] - vm_before[counter]) * 4096.0, 1e-6, name);
    }
}

/// What Python's `os.statvfs` says of each filesystem of PID 1's mount table that Datadog's
/// default filter keeps (a device, not iso9660 or tracefs, not binfmt_misc, a size), by mount
/// point: `[total, used, free, percent, inodes, free inodes]` as Datadog computes them.
fn statvfs_by_mount_point() -> BTreeMap<String, Vec<f64>> {
    const SCRIPT: &str = r#"
import json, os, re, sys
out = {}
for line in open('/proc/1/mounts'):
    device, mount, fstype = line.split()[:3]
    mount = re.sub(r'\\([0-7]{3})', lambda m: chr(int(m.group(1), 8)), mount)
    if device in ('', 'none') or re.search('(?i)(iso9660|tracefs)$', fstype) or re.search('/proc/sys/fs/binfmt_misc$', mount):
        continue
    try:
        s = os.statvfs(mount)
    except OSError:
        continue
    total = s.f_blocks * s.f_frsize
    if total == 0:
        continue
    used = (s.f_blocks - s.f_bfree) * s.f_frsize
    free = s.f_bavail * s.f_frsize
    out[mount] = [total / 1024, used / 1024, free / 1024, used / (used + free) * 100, s.f_files, s.f_ffree]
json.dump(out, sys.stdout)
"#;
    let out = std::process::Command::new("/usr/bin/python3").arg("-c").arg(SCRIPT).output().expect("running python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn disk_agrees_with_python_statvfs() {
    let checker = Checker::new("disk", Some("checks:\n  disk:\n    files: [procfs, /]\n"));
    let runs = checker.runs("disk", r#"{"use_mount": true}"#, &["--times", "2"]);
    let expected = statvfs_by_mount_point();
    let run = &runs[1];
    assert_datadog_names_and_types(run, DISK);

    let by_mount = |name: &str| -> BTreeMap<String, f64> {
        metrics(run, name)
            .iter()
            .map(|m| {
                let mount = m["tags"].as_array().unwrap().iter().find_map(|t| t.as_str()?.strip_prefix("device:")).unwrap();
                (mount.to_string(), m["value"].as_f64().unwrap())
            })
            .collect()
    };
    let totals = by_mount("system.disk.total");
    assert_eq!(totals.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
    // Sizes agree exactly; what is used moves while the machine builds (1% of the size).
    for (mount, numbers) in &expected {
        let [total, used, free, percent, inodes, free_inodes] = numbers[..] else { panic!("{numbers:?}") };
        let slack = total / 100.0;
        assert_eq!(totals[mount], total, "total of {mount}");
        within(by_mount("system.disk.used")[mount], used, used, slack, &format!("used of {mount}"));
        within(by_mount("system.disk.free")[mount], free, free, slack, &format!("free of {mount}"));
        within(by_mount("system.disk.utilized")[mount], percent, percent, 1.0, &format!("utilized of {mount}"));
        within(by_mount("system.disk.in_use")[mount], percent / 100.0, percent / 100.0, 0.01, &format!("in_use of {mount}"));
        if inodes > 0.0 {
            assert_eq!(by_mount("system.fs.inodes.total")[mount], inodes, "inodes of {mount}");
            within(by_mount("system.fs.inodes.free")[mount], free_inodes, free_inodes, inodes / 100.0, &format!("free inodes of {mount}"));
        } else {
            assert!(!by_mount("system.fs.inodes.total").contains_key(mount), "{mount} has no inodes");
        }
    }
}

#[test]
fn disk_without_the_root_granted_fails_naming_the_grant() {
    // The shipped manifest grants /host/root (the DaemonSet's): `/` outside it is refused.
    let checker = Checker::new("disk", None);
    let out = checker.output("disk", "{}", &[]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let error = report["runs"][0]["error"].to_string();
    assert!(error.contains("rootfs_path") && error.contains("checks.disk.files"), "{report:#}");
    assert!(report["runs"][0]["metrics"].as_array().is_none_or(|m| m.iter().all(|m| !m["name"].as_str().unwrap().starts_with("system.disk.total"))));
}
