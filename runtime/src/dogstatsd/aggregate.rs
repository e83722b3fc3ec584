//! DogStatsD samples → series, as the Datadog agent's DogStatsD aggregates them: in 10-second
//! buckets of their arrival time, per context (name, type, host, tags with the sender's pod
//! tags), each closed bucket flushed once.
//!
//! - `g`: the last value. `c`: the sum of value / sample rate, sent as a count (Datadog sends
//!   the same sum as a per-second rate over the 10 s interval; `.as_count()` reads alike).
//! - `s`: the number of distinct values in the bucket, as a gauge.
//! - `h`, `ms` and `d`: `.max`, `.median`, `.avg`, `.count` and `.95percentile` (the agent's
//!   default `histogram_aggregates` and `histogram_percentiles`), a sample of rate r counting
//!   1/r times in `.count` and `.avg`. Distributions are aggregated the same way: adrt does not
//!   build the sketches Datadog's distribution intake takes.
//! - With a timestamp (`|T<seconds>`, v1.3), gauges and counts are kept under that second, not
//!   aggregated with live samples, and go out at the next flush whatever their age; other types
//!   ignore a timestamp, as the Datadog agent does.
//!
//! A tag `host:<name>` names the host of the series instead of the agent's; the
//! `dd.internal.*` tags steer origin detection and are not sent.
//!
//! Memory is bounded: at most `max_contexts` contexts wait for a flush (samples of new ones are
//! dropped and counted), a histogram keeps at most [`MAX_HELD_VALUES`] samples per context
//! and bucket for its percentiles (its count, average and maximum stay exact), a set as many
//! members (further new members are dropped and counted), all of them together at most
//! [`MAX_HELD_BYTES`], and [`MAX_EVENTS`] events and as many
//! service checks wait at most.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::aggregate::{Flushed, Series, histogram_aggregates};
use crate::exec::submission::{Event, MetricKind, ServiceCheck};

use super::parse::{Kind, Metric, Value};

/// The Datadog agent's DogStatsD bucket width.
pub const BUCKET_SECONDS: i64 = 10;
/// Samples a histogram (members a set) keeps per context and bucket.
pub const MAX_HELD_VALUES: usize = 100_000;
/// Bytes of histogram samples and set members held by all contexts together, at most: many
/// contexts each near [`MAX_HELD_VALUES`] must not take the node's memory either.
pub const MAX_HELD_BYTES: usize = 256 << 20;
/// Messages remembered by how they were sent ([`Aggregator::add`]'s shortcut), at most.
const MAX_RECENT: usize = 65_536;
/// Events (and service checks) waiting for a flush, at most.
pub const MAX_EVENTS: usize = 10_000;

/// The tags of a sender's pod, with their hashes computed once.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    tags: Arc<[String]>,
    hashes: Arc<[u64]>,
    /// The hash of all of them: two origins with the same tags are one.
    id: u64,
}

impl Origin {
    pub fn new(tags: Arc<[String]>) -> Origin {
        let hashes: Arc<[u64]> = tags.iter().map(|tag| hash_of(tag.as_str())).collect();
        let id = HASHER.hash_one(&*hashes);
        Origin { tags, hashes, id }
    }

    pub fn tags(&self) -> &Arc<[String]> {
        &self.tags
    }

    pub fn is_known(&self) -> bool {
        !self.tags.is_empty()
    }
}

/// Why a sample was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `max_contexts` contexts already wait for the flush.
    ContextLimit,
    /// The set already holds [`MAX_HELD_VALUES`] members.
    SetLimit,
    /// [`MAX_EVENTS`] events or service checks already wait.
    EventLimit,
}

/// What a flush took from the aggregator.
pub struct Due {
    buckets: Vec<(i64, Bucket)>,
    events: Vec<Event>,
    service_checks: Vec<ServiceCheck>,
    now: i64,
}

impl Due {
    /// The series of each bucket with the time of its points, in time order, then the events
    /// and service checks.
    pub fn into_batches(mut self) -> Vec<(SystemTime, Flushed)> {
        self.buckets.sort_unstable_by_key(|(second, _)| *second);
        let mut out = Vec::with_capacity(self.buckets.len() + 1);
        for (seconds, bucket) in self.buckets {
            let series = bucket.into_values().flat_map(|(info, held)| series_of(&info, held)).collect();
            out.push((epoch(seconds), Flushed { series, ..Flushed::default() }));
        }
        if !self.events.is_empty() || !self.service_checks.is_empty() {
            let flushed = Flushed { events: self.events, service_checks: self.service_checks, ..Flushed::default() };
            out.push((epoch(self.now), flushed));
        }
        out
    }
}

/// What makes two samples the same series.
#[derive(Debug)]
struct ContextInfo {
    name: Box<str>,
    host: Option<Box<str>>,
    tags: Vec<String>,
}

#[derive(Debug)]
enum Held {
    Gauge(f64),
    Counter(f64),
    Set(HashSet<Box<str>>),
    Histogram { samples: Vec<f64>, count: f64, sum: f64, max: f64 },
}

type Bucket = HashMap<u64, (Arc<ContextInfo>, Held), BuildNoHash>;

/// Where a sample goes: a live bucket (by arrival) or a timestamped second.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Live(i64),
    Stamped(i64),
}

pub struct Aggregator {
    max_contexts: usize,
    contexts: usize,
    /// Live buckets by start: one or two, searched from the newest.
    live: Vec<(i64, Bucket)>,
    /// Timestamped samples by their second.
    stamped: HashMap<i64, Bucket>,
    /// Contexts seen in the open buckets, so that a context's name and tags are built once.
    known: HashMap<u64, Arc<ContextInfo>, BuildNoHash>,
    events: Vec<Event>,
    service_checks: Vec<ServiceCheck>,
    /// Reused for each sample's tag hashes.
    scratch: Vec<u64>,
    /// Of histogram samples and set members, against [`MAX_HELD_BYTES`].
    held_bytes: usize,
    /// Context keys by the hash of a message's name, type and tags as sent, and its origin.
    recent: HashMap<u64, u64, BuildNoHash>,
}

impl Aggregator {
    pub fn new(max_contexts: usize) -> Aggregator {
        Aggregator {
            max_contexts,
            contexts: 0,
            live: Vec::new(),
            stamped: HashMap::new(),
            known: HashMap::default(),
            events: Vec::new(),
            service_checks: Vec::new(),
            scratch: Vec::new(),
            held_bytes: 0,
            recent: HashMap::default(),
        }
    }

    /// Contexts waiting for a flush.
    pub fn contexts(&self) -> usize {
        self.contexts
    }

    /// Adds every value of `metric`, received at `now` (seconds since the epoch). Returns the
    /// number of samples taken and why the others were not.
    pub fn add(&mut self, metric: &Metric<'_>, origin: &Origin, now: i64) -> (u64, Option<Refused>) {
        let stamped = matches!(metric.kind, Kind::Gauge | Kind::Counter).then_some(metric.timestamp).flatten();
        let slot = match stamped {
            Some(seconds) => Slot::Stamped(seconds),
            None => Slot::Live(now - now.rem_euclid(BUCKET_SECONDS)),
        };
        // Clients repeat their messages byte for byte: the tags as sent, hashed whole, find the
        // context without splitting, hashing and sorting each tag again.
        let as_sent = HASHER.hash_one((metric.name, metric.kind as u8, metric.tags.raw(), origin.id));
        let key = match self.recent.get(&as_sent) {
            Some(key) => *key,
            None => {
                let key = self.context_key(metric, origin);
                if self.recent.len() >= MAX_RECENT {
                    self.recent.clear();
                }
                self.recent.insert(as_sent, key);
                key
            }
        };

        let bucket = match slot {
            Slot::Stamped(second) => self.stamped.entry(second).or_default(),
            Slot::Live(start) => {
                let at = match self.live.iter().rposition(|(s, _)| *s == start) {
                    Some(at) => at,
                    None => {
                        self.live.push((start, Bucket::default()));
                        self.live.len() - 1
                    }
                };
                &mut self.live[at].1
            }
        };
        let entry = match bucket.get_mut(&key) {
            Some((_, held)) => held,
            None => {
                if self.contexts >= self.max_contexts {
                    return (0, Some(Refused::ContextLimit));
                }
                let info = self.known.entry(key).or_insert_with(|| Arc::new(context_info(metric, &origin.tags))).clone();
                self.contexts += 1;
                let held = match metric.kind {
                    Kind::Gauge => Held::Gauge(0.0),
                    Kind::Counter => Held::Counter(0.0),
                    Kind::Set => Held::Set(HashSet::new()),
                    Kind::Histogram | Kind::Timer | Kind::Distribution => {
                        Held::Histogram { samples: Vec::new(), count: 0.0, sum: 0.0, max: f64::NEG_INFINITY }
                    }
                };
                &mut bucket.entry(key).or_insert((info, held)).1
            }
        };
        let weight = 1.0 / metric.sample_rate;
        let (mut taken, mut refused) = (0, None);
        for value in metric.values() {
            match (entry as &mut Held, value) {
                (Held::Gauge(last), Value::Number(v)) => *last = v,
                (Held::Counter(sum), Value::Number(v)) => *sum += v * weight,
                (Held::Histogram { samples, count, sum, max }, Value::Number(v)) => {
                    if samples.len() < MAX_HELD_VALUES && self.held_bytes < MAX_HELD_BYTES {
                        samples.push(v);
                        self.held_bytes += SAMPLE_BYTES;
                    }
                    *count += weight;
                    *sum += v * weight;
                    *max = max.max(v);
                }
                (Held::Set(members), Value::Member(member)) => {
                    if members.contains(member) {
                        taken += 1;
                        continue;
                    }
                    if members.len() >= MAX_HELD_VALUES || self.held_bytes >= MAX_HELD_BYTES {
                        refused = Some(Refused::SetLimit);
                        continue;
                    }
                    self.held_bytes += member_bytes(member);
                    members.insert(member.into());
                }
                // The parser gives sets members and every other type numbers.
                _ => continue,
            }
            taken += 1;
        }
        (taken, refused)
    }

    /// What makes the context, in any order of tags: name, type, host and the distinct tags
    /// with the sender's.
    fn context_key(&mut self, metric: &Metric<'_>, origin: &Origin) -> u64 {
        let mut host = None;
        self.scratch.clear();
        self.scratch.extend_from_slice(&origin.hashes);
        for tag in metric.tags.iter() {
            if let Some(name) = tag.strip_prefix("host:") {
                host = Some(name);
            } else if !tag.starts_with("dd.internal.") {
                self.scratch.push(hash_of(tag));
            }
        }
        self.scratch.sort_unstable();
        self.scratch.dedup();
        HASHER.hash_one((metric.name, metric.kind as u8, host, self.scratch.as_slice()))
    }

    pub fn add_event(&mut self, event: Event) -> Result<(), Refused> {
        if self.events.len() >= MAX_EVENTS {
            return Err(Refused::EventLimit);
        }
        self.events.push(event);
        Ok(())
    }

    pub fn add_service_check(&mut self, check: ServiceCheck) -> Result<(), Refused> {
        if self.service_checks.len() >= MAX_EVENTS {
            return Err(Refused::EventLimit);
        }
        self.service_checks.push(check);
        Ok(())
    }

    /// Takes the buckets closed at `now` (seconds since the epoch), every timestamped second,
    /// and the events and service checks; `everything` takes the open bucket too (at shutdown).
    /// Quick, so that the receivers wait little for the lock: [`Due::into_batches`] builds the
    /// series after it.
    pub fn take_due(&mut self, now: i64, everything: bool) -> Due {
        let open = now - now.rem_euclid(BUCKET_SECONDS);
        let (mut buckets, still_open): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.live).into_iter().partition(|(start, _)| everything || *start < open);
        self.live = still_open;
        buckets.extend(self.stamped.drain());
        for (_, bucket) in &buckets {
            self.contexts -= bucket.len();
            self.held_bytes -= bucket.values().map(|(_, held)| held.bytes()).sum::<usize>();
        }
        // A context no open bucket holds is built again when it comes back (those just taken
        // go at the next flush).
        self.known.retain(|_, info| Arc::strong_count(info) > 1);
        Due {
            buckets,
            events: std::mem::take(&mut self.events),
            service_checks: std::mem::take(&mut self.service_checks),
            now,
        }
    }
}

fn context_info(metric: &Metric<'_>, origin_tags: &[String]) -> ContextInfo {
    let host = metric.tags.iter().filter_map(|tag| tag.strip_prefix("host:")).last();
    let mut tags: Vec<String> = metric
        .tags
        .iter()
        .filter(|tag| !tag.starts_with("host:") && !tag.starts_with("dd.internal."))
        .map(String::from)
        .chain(origin_tags.iter().cloned())
        .collect();
    tags.sort_unstable();
    tags.dedup();
    ContextInfo { name: metric.name.into(), host: host.map(Into::into), tags }
}

/// What one histogram sample and one set member count against [`MAX_HELD_BYTES`].
const SAMPLE_BYTES: usize = std::mem::size_of::<f64>();

fn member_bytes(member: &str) -> usize {
    member.len() + std::mem::size_of::<Box<str>>() * 2
}

impl Held {
    fn bytes(&self) -> usize {
        match self {
            Held::Histogram { samples, .. } => samples.len() * SAMPLE_BYTES,
            Held::Set(members) => members.iter().map(|member| member_bytes(member)).sum(),
            Held::Gauge(_) | Held::Counter(_) => 0,
        }
    }
}

fn series_of(info: &ContextInfo, held: Held) -> Vec<Series> {
    let series = |name: String, kind: MetricKind, value: f64| Series {
        name,
        kind,
        value,
        tags: info.tags.clone(),
        hostname: info.host.as_deref().map(String::from),
    };
    match held {
        Held::Gauge(value) => vec![series(info.name.to_string(), MetricKind::Gauge, value)],
        Held::Counter(sum) => vec![series(info.name.to_string(), MetricKind::Count, sum)],
        Held::Set(members) => vec![series(info.name.to_string(), MetricKind::Gauge, members.len() as f64)],
        Held::Histogram { mut samples, count, sum, max } => {
            samples.sort_unstable_by(f64::total_cmp);
            histogram_aggregates(&samples, count, sum, max)
                .into_iter()
                .map(|(suffix, value)| series(format!("{}.{suffix}", info.name), MetricKind::Histogram, value))
                .collect()
        }
    }
}

fn epoch(seconds: i64) -> SystemTime {
    match u64::try_from(seconds) {
        Ok(seconds) => SystemTime::UNIX_EPOCH + Duration::from_secs(seconds),
        Err(_) => SystemTime::UNIX_EPOCH,
    }
}

/// A fast keyed hash (foldhash) with a fixed seed: context keys are compared within one
/// process only.
const HASHER: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0x6164_7274);

fn hash_of(text: &str) -> u64 {
    HASHER.hash_one(text)
}

/// The buckets' keys are hashes already: hashing them again would only cost.
#[derive(Default, Clone, Copy)]
struct BuildNoHash;

impl BuildHasher for BuildNoHash {
    type Hasher = NoHash;
    fn build_hasher(&self) -> NoHash {
        NoHash(0)
    }
}

struct NoHash(u64);

impl Hasher for NoHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed here; fold anything else rather than lose it.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dogstatsd::parse::{Message, parse};

    const NOW: i64 = 1_700_000_005; // in the bucket starting at 1_700_000_000

    fn add(aggregator: &mut Aggregator, line: &str, origin: &Origin, now: i64) -> (u64, Option<Refused>) {
        let Ok(Message::Metric(metric)) = parse(line.as_bytes()) else { panic!("not a metric: {line}") };
        aggregator.add(&metric, origin, now)
    }

    /// Every series flushed at `now`, as (bucket start, name, value, tags) sorted.
    fn flushed(aggregator: &mut Aggregator, now: i64, everything: bool) -> Vec<(u64, String, f64, Vec<String>)> {
        let mut out: Vec<_> = aggregator
            .take_due(now, everything).into_batches()
            .into_iter()
            .flat_map(|(at, flushed)| {
                let at = at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
                flushed.series.into_iter().map(move |s| (at, s.name, s.value, s.tags))
            })
            .collect();
        out.sort_by(|a, b| (a.0, &a.1, &a.3).cmp(&(b.0, &b.1, &b.3)).then(a.2.total_cmp(&b.2)));
        out
    }

    #[test]
    fn counters_sum_value_over_rate_per_bucket_and_buckets_close_after_ten_seconds() {
        let mut agg = Aggregator::new(100);
        for _ in 0..1000 {
            add(&mut agg, "page.views:3|c", &Origin::default(), NOW);
        }
        add(&mut agg, "page.views:1|c|@0.25", &Origin::default(), NOW);
        add(&mut agg, "page.views:2|c", &Origin::default(), NOW + 10);
        assert!(flushed(&mut agg, NOW + 4, false).is_empty(), "the bucket is still open");
        assert_eq!(flushed(&mut agg, NOW + 5, false), [(1_700_000_000, "page.views".into(), 3004.0, vec![])]);
        assert_eq!(agg.contexts(), 1, "the next bucket waits");
        assert_eq!(flushed(&mut agg, NOW + 5, true), [(1_700_000_010, "page.views".into(), 2.0, vec![])]);
        assert_eq!(agg.contexts(), 0);
    }

    #[test]
    fn gauges_keep_the_last_sets_count_distinct_members() {
        let mut agg = Aggregator::new(100);
        // A set member is taken whole, `:` and all, as the Datadog agent takes it.
        for line in ["temp:20|g", "temp:21.5|g|@0.5", "users:alice|s", "users:bob|s", "users:alice|s", "users:carol:dave|s"] {
            add(&mut agg, line, &Origin::default(), NOW);
        }
        let out = flushed(&mut agg, NOW, true);
        assert_eq!(out, [(1_700_000_000, "temp".into(), 21.5, vec![]), (1_700_000_000, "users".into(), 3.0, vec![])]);
    }

    #[test]
    fn histograms_timers_and_distributions_weigh_sampled_values() {
        let mut agg = Aggregator::new(100);
        for value in 1..=10 {
            add(&mut agg, &format!("latency:{value}|ms"), &Origin::default(), NOW);
        }
        add(&mut agg, "size:4:6|h|@0.5", &Origin::default(), NOW);
        add(&mut agg, "size:20|d", &Origin::default(), NOW);
        let out = flushed(&mut agg, NOW, true);
        let values: Vec<(&str, f64)> = out.iter().map(|(_, name, value, _)| (name.as_str(), *value)).collect();
        assert_eq!(
            values,
            [
                ("latency.95percentile", 10.0),
                ("latency.avg", 5.5),
                ("latency.count", 10.0),
                ("latency.max", 10.0),
                ("latency.median", 5.0),
                // A `d` and an `h` of one name are two contexts: each aggregated on its own.
                ("size.95percentile", 6.0),
                ("size.95percentile", 20.0),
                ("size.avg", 5.0),
                ("size.avg", 20.0),
                ("size.count", 1.0),
                ("size.count", 4.0),
                ("size.max", 6.0),
                ("size.max", 20.0),
                ("size.median", 4.0),
                ("size.median", 20.0),
            ]
        );
    }

    #[test]
    fn contexts_ignore_tag_order_and_repeats_and_take_origin_tags() {
        let mut agg = Aggregator::new(100);
        let origin = Origin::new(Arc::from(vec!["kube_namespace:shop".to_string(), "pod_name:web-1".to_string()]));
        add(&mut agg, "hits:1|c|#b:2,a:1", &origin, NOW);
        add(&mut agg, "hits:1|c|#a:1,b:2,a:1", &origin, NOW);
        add(&mut agg, "hits:1|c|#a:1,b:2,kube_namespace:shop", &origin, NOW);
        add(&mut agg, "hits:1|c|#a:1,b:2", &Origin::default(), NOW);
        let out = flushed(&mut agg, NOW, true);
        let tags = |list: &[&str]| list.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        assert_eq!(
            out,
            [
                (1_700_000_000, "hits".into(), 1.0, tags(&["a:1", "b:2"])),
                (1_700_000_000, "hits".into(), 3.0, tags(&["a:1", "b:2", "kube_namespace:shop", "pod_name:web-1"])),
            ]
        );
    }

    #[test]
    fn host_tags_name_the_host_and_internal_tags_are_not_sent() {
        let mut agg = Aggregator::new(100);
        add(&mut agg, "up:1|g|#host:db-1,dd.internal.entity_id:abc,role:db", &Origin::default(), NOW);
        let out = agg.take_due(NOW, true).into_batches();
        let series = &out[0].1.series[0];
        assert_eq!((series.hostname.as_deref(), series.tags.as_slice()), (Some("db-1"), ["role:db".to_string()].as_slice()));
    }

    #[test]
    fn timestamped_gauges_and_counts_keep_their_second_and_go_out_at_once() {
        let mut agg = Aggregator::new(100);
        add(&mut agg, "backfill:5|g|T1600000123", &Origin::default(), NOW);
        add(&mut agg, "backfill:7|c|T1600000123", &Origin::default(), NOW);
        add(&mut agg, "later:1|h|T1600000123", &Origin::default(), NOW);
        let out = flushed(&mut agg, NOW, false);
        assert_eq!(out, [(1_600_000_123, "backfill".into(), 5.0, vec![]), (1_600_000_123, "backfill".into(), 7.0, vec![])]);
        assert_eq!(agg.contexts(), 1, "a histogram ignores the timestamp: it waits in the live bucket");
    }

    #[test]
    fn new_contexts_past_the_limit_are_refused_known_ones_still_count() {
        let mut agg = Aggregator::new(2);
        assert_eq!(add(&mut agg, "a:1|c", &Origin::default(), NOW), (1, None));
        assert_eq!(add(&mut agg, "b:1|c", &Origin::default(), NOW), (1, None));
        assert_eq!(add(&mut agg, "c:1|c", &Origin::default(), NOW), (0, Some(Refused::ContextLimit)));
        assert_eq!(add(&mut agg, "a:1:1|c", &Origin::default(), NOW), (2, None));
        assert_eq!(flushed(&mut agg, NOW, true).len(), 2);
        assert_eq!(add(&mut agg, "c:1|c", &Origin::default(), NOW), (1, None), "room again after the flush");
    }

    #[test]
    fn set_members_are_bounded_and_their_bytes_given_back_at_the_flush() {
        let mut agg = Aggregator::new(100);
        for member in 0..MAX_HELD_VALUES {
            assert_eq!(add(&mut agg, &format!("ids:{member}|s"), &Origin::default(), NOW), (1, None));
        }
        assert_eq!(add(&mut agg, "ids:0|s", &Origin::default(), NOW), (1, None), "a member already held is taken");
        assert_eq!(add(&mut agg, "ids:new|s", &Origin::default(), NOW), (0, Some(Refused::SetLimit)));
        add(&mut agg, "lat:1:2:3|h", &Origin::default(), NOW);
        assert!(agg.held_bytes > MAX_HELD_VALUES * 2 * std::mem::size_of::<Box<str>>());
        let out = flushed(&mut agg, NOW, true);
        assert!(out.iter().any(|(_, name, value, _)| name == "ids" && *value == MAX_HELD_VALUES as f64));
        assert_eq!(agg.held_bytes, 0);
    }

    #[test]
    fn events_and_service_checks_wait_for_the_flush_bounded() {
        let mut agg = Aggregator::new(2);
        let check = ServiceCheck {
            name: "app.up".into(),
            status: crate::exec::submission::Status::Ok,
            tags: vec![],
            hostname: None,
            message: None,
            timestamp: None,
        };
        for _ in 0..MAX_EVENTS {
            agg.add_service_check(check.clone()).unwrap();
        }
        assert_eq!(agg.add_service_check(check), Err(Refused::EventLimit));
        let out = agg.take_due(NOW, false).into_batches();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1.service_checks.len(), MAX_EVENTS);
    }
}
