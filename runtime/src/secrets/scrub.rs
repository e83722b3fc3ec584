//! The values that must never be shown, and their removal from what checks give back. A check
//! may echo what it was handed (a URL with a password in its error, an instance it logs), so
//! everything a run returns through the host passes [`Scrubber::scrub`] before it reaches a log,
//! the status API, `/metrics` or an intake. As the Datadog agent does, a known value is replaced
//! by [`MASK`]; values too short to be told from ordinary text are not scrubbed.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::RwLock;

/// What a secret value is replaced with.
pub const MASK: &str = "********";
/// Shorter values are not scrubbed: masking every "abc" of every message would hide more than
/// it protects, and so short a secret is guessed anyway.
pub const MIN_SCRUBBED_BYTES: usize = 4;
/// Values kept at most; past it the oldest go (rotated long ago, by then).
const MAX_VALUES: usize = 1024;

/// The set of secret values, shared by every store of the engine and by whoever learns a value
/// (the secret resolver, the host's credential reads, the agent's own settings). Adding is
/// rare; scrubbing reads a snapshot and costs nothing while the set is empty.
#[derive(Default)]
pub struct Scrubber {
    nonempty: AtomicBool,
    values: RwLock<Values>,
}

#[derive(Default)]
struct Values {
    oldest_first: VecDeque<Arc<str>>,
    /// The same values, longest first, so a value that holds another is masked whole.
    longest_first: Arc<[Arc<str>]>,
}

impl Scrubber {
    /// Scrubs `value` from now on, with each of its lines (a PEM block is logged line by line)
    /// and its JSON-escaped form (a check echoing its instance as JSON).
    pub fn add(&self, value: &str) {
        let mut forms: Vec<String> = vec![value.trim().to_string()];
        forms.extend(value.lines().map(|line| line.trim().to_string()));
        let escaped = serde_json::to_string(value.trim()).unwrap_or_default();
        forms.push(escaped.trim_matches('"').to_string());
        forms.retain(|form| form.len() >= MIN_SCRUBBED_BYTES);
        // The host learns the same token on every request: known, it costs a read lock.
        if forms.iter().all(|form| self.values.read().oldest_first.iter().any(|v| **v == **form)) {
            return;
        }
        let mut values = self.values.write();
        let mut changed = false;
        for form in forms {
            if values.oldest_first.iter().any(|v| **v == *form) {
                continue;
            }
            if values.oldest_first.len() >= MAX_VALUES {
                values.oldest_first.pop_front();
            }
            values.oldest_first.push_back(form.into());
            changed = true;
        }
        if changed {
            let mut sorted: Vec<Arc<str>> = values.oldest_first.iter().cloned().collect();
            sorted.sort_by_key(|v| std::cmp::Reverse(v.len()));
            values.longest_first = sorted.into();
            self.nonempty.store(true, Ordering::Release);
        }
    }

    /// `text` with every known value replaced by [`MASK`]; borrowed when none occurs.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if !self.nonempty.load(Ordering::Acquire) {
            return Cow::Borrowed(text);
        }
        let values = self.values.read().longest_first.clone();
        let mut out = Cow::Borrowed(text);
        for value in values.iter() {
            if out.contains(&**value) {
                out = Cow::Owned(out.replace(&**value, MASK));
            }
        }
        out
    }

    /// [`scrub`](Self::scrub) in place.
    pub fn scrub_string(&self, text: &mut String) {
        if let Cow::Owned(scrubbed) = self.scrub(text) {
            *text = scrubbed;
        }
    }

    /// Whether any value is known (scrubbing is a no-op otherwise).
    pub fn is_active(&self) -> bool {
        self.nonempty.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_are_masked_wherever_they_occur() {
        let scrubber = Scrubber::default();
        assert!(matches!(scrubber.scrub("nothing known yet"), Cow::Borrowed(_)));
        scrubber.add("hunter2-password");
        scrubber.add("hunter2");
        let text = "GET http://db/hunter2-password/status failed; hunter2 again: hunter2-password";
        assert_eq!(scrubber.scrub(text), "GET http://db/********/status failed; ******** again: ********");
        assert!(matches!(scrubber.scrub("clean text"), Cow::Borrowed(_)), "no copy when nothing matches");
        let mut owned = String::from("tag:hunter2");
        scrubber.scrub_string(&mut owned);
        assert_eq!(owned, "tag:********");
    }

    #[test]
    fn short_values_are_not_scrubbed() {
        let scrubber = Scrubber::default();
        scrubber.add("abc");
        scrubber.add("  \n");
        assert!(!scrubber.is_active());
        assert_eq!(scrubber.scrub("abc"), "abc");
        scrubber.add(" abcd\n");
        assert_eq!(scrubber.scrub("xabcdx"), "x********x", "surrounding whitespace is not part of the value");
    }

    #[test]
    fn lines_and_json_escapes_of_a_value_are_masked_too() {
        let scrubber = Scrubber::default();
        scrubber.add("-----BEGIN KEY-----\nMIIBVwIBADANBgkq\n-----END KEY-----");
        assert_eq!(scrubber.scrub("line: MIIBVwIBADANBgkq"), "line: ********");
        scrubber.add("pa\"ss\\word");
        assert_eq!(scrubber.scrub(r#"{"password":"pa\"ss\\word"}"#), r#"{"password":"********"}"#);
    }

    #[test]
    fn the_set_is_bounded_oldest_out() {
        let scrubber = Scrubber::default();
        for n in 0..MAX_VALUES + 10 {
            scrubber.add(&format!("value-{n:05}"));
        }
        assert_eq!(scrubber.scrub("value-00000"), "value-00000", "the oldest went");
        assert_eq!(scrubber.scrub(&format!("value-{:05}", MAX_VALUES + 9)), MASK);
    }
}
