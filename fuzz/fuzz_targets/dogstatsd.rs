//! The DogStatsD parser, `adrt::dogstatsd::parse`, on any packet: each of its messages is
//! parsed; what parses is walked (values, tags) and held to what the parser promises: a sample
//! rate in (0, 1], finite numbers, one non-empty member per set, a positive metric timestamp, a
//! service check status of 0 to 3, fields that never hold their own separator; what does not
//! parse has a reason among `parse::REASONS` and a message.
//!
//! Seeds in `fuzz/corpus/dogstatsd` (one packet each), tokens in `fuzz/dicts/dogstatsd.dict`.

#![no_main]

use std::sync::OnceLock;

use adrt::dogstatsd::parse::{self, Kind, Message, Tags, Value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for message in parse::messages(data) {
        assert!(!message.is_empty() && !message.contains(&b'\n'), "{message:?}");
        let parsed = parse::parse(message);
        if *PRINT.get_or_init(|| std::env::var_os("ADRT_FUZZ_PRINT").is_some()) {
            eprintln!("{:?}\n  {parsed:?}", String::from_utf8_lossy(message));
        }
        match parsed {
            Ok(Message::Metric(metric)) => {
                assert!(!metric.name.is_empty() && !metric.name.contains([':', '|']), "{metric:?}");
                assert!(metric.sample_rate > 0.0 && metric.sample_rate <= 1.0, "{metric:?}");
                assert!(metric.timestamp.is_none_or(|ts| ts > 0), "{metric:?}");
                let values: Vec<Value> = metric.values().collect();
                assert!(!values.is_empty(), "{metric:?}");
                for value in &values {
                    match (metric.kind, value) {
                        (Kind::Set, Value::Member(member)) => assert!(values.len() == 1 && !member.is_empty() && !member.contains('|'), "{metric:?}"),
                        (Kind::Set, _) | (_, Value::Member(_)) => panic!("{value:?} in {metric:?}"),
                        (_, Value::Number(n)) => assert!(n.is_finite(), "{metric:?}"),
                    }
                }
                walk(metric.tags);
                field(metric.container_id);
            }
            Ok(Message::Event(event)) => {
                assert!(!event.title.is_empty(), "{event:?}");
                assert!(event.priority.is_none_or(|p| ["normal", "low"].contains(&p)), "{event:?}");
                assert!(event.alert_type.is_none_or(|t| ["error", "warning", "info", "success"].contains(&t)), "{event:?}");
                for value in [event.hostname, event.aggregation_key, event.source_type_name, event.container_id] {
                    field(value);
                }
                walk(event.tags);
            }
            Ok(Message::ServiceCheck(check)) => {
                assert!(check.status <= 3 && !check.name.is_empty() && !check.name.contains('|'), "{check:?}");
                for value in [check.hostname, check.message.as_deref(), check.container_id] {
                    field(value);
                }
                walk(check.tags);
            }
            Err(err) => {
                assert!(parse::REASONS.contains(&err.reason()), "{err:?}");
                assert!(!err.to_string().is_empty(), "{err:?}");
            }
        }
    }
});

/// `ADRT_FUZZ_PRINT=1 fuzz/target/<triple>/release/dogstatsd INPUT` shows each message and
/// what it parsed to.
static PRINT: OnceLock<bool> = OnceLock::new();

fn walk(tags: Tags) {
    assert_eq!(tags.is_empty(), tags.iter().next().is_none(), "{tags:?}");
    for tag in tags.iter() {
        assert!(!tag.is_empty() && !tag.contains([',', '|']), "{tags:?}");
    }
}

/// An optional text field: absent rather than empty, and cut at the next `|`.
fn field(value: Option<&str>) {
    assert!(value.is_none_or(|v| !v.is_empty() && !v.contains('|')), "{value:?}");
}
