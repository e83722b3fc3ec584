//! Stable check instance IDs: `<check>:<16 hex digits>`.
//!
//! The hash covers the check name, where the instance comes from (for a discovered instance:
//! pod UID and container), the init_config and the resolved instance, so a changed config is a
//! new instance and two replicas with identical instances are two instances.

use sha2::{Digest, Sha256};

/// `source` distinguishes otherwise identical instances (empty for `adrt check`).
pub fn instance_id(check: &str, source: &[&str], init_config: &serde_json::Value, instance: &serde_json::Value) -> String {
    let mut hasher = Sha256::new();
    for part in [check.as_bytes()].into_iter().chain(source.iter().map(|s| s.as_bytes())) {
        hasher.update(part);
        hasher.update([0]);
    }
    // serde_json's maps are sorted, so the same config always serializes the same way.
    hasher.update(init_config.to_string());
    hasher.update([0]);
    hasher.update(instance.to_string());
    let digest = hasher.finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{check}:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_stable_and_distinguish_what_matters() {
        let a = instance_id("nginx", &["uid-1", "web"], &json!({}), &json!({"url": "u", "tags": ["a"]}));
        assert_eq!(a, instance_id("nginx", &["uid-1", "web"], &json!({}), &json!({"tags": ["a"], "url": "u"})));
        assert!(a.starts_with("nginx:") && a.len() == "nginx:".len() + 16);
        assert_ne!(a, instance_id("nginx", &["uid-2", "web"], &json!({}), &json!({"url": "u", "tags": ["a"]})));
        assert_ne!(a, instance_id("nginx", &["uid-1", "web"], &json!({"x": 1}), &json!({"url": "u", "tags": ["a"]})));
        assert_ne!(a, instance_id("nginx", &["uid-1", "web"], &json!({}), &json!({"url": "v", "tags": ["a"]})));
    }
}
