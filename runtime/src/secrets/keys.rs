//! Config values that are secret by their key, as the Datadog agent's scrubber finds them
//! (`pkg/util/scrubber/default.go`): a `password:`, a `*_token:`, an `api_key:` ... in a check's
//! instance or init_config is never shown. [`learn`] hands such values to the [`Scrubber`], so
//! that a check echoing one is masked wherever the run's output goes; [`mask`] replaces them in a
//! config shown whole (`adrt configcheck`).

use serde_json::Value;

use super::scrub::{MASK, Scrubber};

/// Keys whose whole name marks a secret (Datadog's SNMP, exact-key and header replacers).
const EXACT: &[&str] = &[
    "secret",
    "consumer_key",
    "token_id",
    "community",
    "community_string",
    "community_strings",
    "auth_key",
    "authkey",
    "priv_key",
    "privkey",
    "authentication_key",
    "privacy_key",
    "authorization",
    "auth-tenantid",
    "authority",
    "lodauth",
    "sec-websocket-key",
    "statuskey",
    "cookie",
    "accesstoken",
    "additional_endpoints",
];
/// Parts that mark a secret wherever they occur in the key (`mysql_password`, `x_api_key`).
const PARTS: &[&str] = &["pass", "pwd", "pswd", "api_key", "apikey", "api-key", "app_key", "appkey", "app-key", "application_key"];
/// Endings that mark a secret (`bearer_token`, `client_secret`, `tls_private_key`).
const ENDINGS: &[&str] = &["token", "jwt", "_secret", "_secret_id", "access_key", "private_key"];
/// Endings that mark a secret in an HTTP header named `x-...` (`X-Api-Key`, `X-Vault-Token`).
const HEADER_ENDINGS: &[&str] = &["key", "token", "auth", "secret", "passcode"];

/// Whether the value of `key` is a secret; case does not matter (`Authorization`, `PASSWORD`).
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    EXACT.contains(&key.as_str())
        || PARTS.iter().any(|part| key.contains(part))
        || ENDINGS.iter().any(|ending| key.ends_with(ending))
        || (key.starts_with("x-") && HEADER_ENDINGS.iter().any(|ending| key.ends_with(ending)))
}

/// Hands every value under a secret key of `config` (at any depth: a header of `headers`) to
/// `scrubber`.
pub fn learn(config: &Value, scrubber: &Scrubber) {
    visit(config, false, &mut |secret, text| {
        if secret {
            scrubber.add(text);
        }
    });
}

/// `config` with every value under a secret key replaced by [`MASK`] (an empty one stays, it
/// hides nothing), and every other string scrubbed of the values `scrubber` knows (a
/// `%%env_...%%` value, a Secret's).
pub fn mask(config: &Value, scrubber: &Scrubber) -> Value {
    let mut masked = config.clone();
    mask_in_place(&mut masked, false, scrubber);
    masked
}

fn mask_in_place(value: &mut Value, secret: bool, scrubber: &Scrubber) {
    match value {
        Value::Object(map) => map.iter_mut().for_each(|(key, v)| mask_in_place(v, secret || is_secret_key(key), scrubber)),
        Value::Array(items) => items.iter_mut().for_each(|v| mask_in_place(v, secret, scrubber)),
        Value::String(s) if secret && !s.is_empty() => *value = Value::String(MASK.to_string()),
        Value::Number(_) | Value::Bool(_) if secret => *value = Value::String(MASK.to_string()),
        Value::String(s) => scrubber.scrub_string(s),
        _ => {}
    }
}

/// Calls `f(secret, text)` on every scalar of `value` as text; `secret` when a key above it is.
fn visit(value: &Value, secret: bool, f: &mut impl FnMut(bool, &str)) {
    match value {
        Value::Object(map) => map.iter().for_each(|(key, v)| visit(v, secret || is_secret_key(key), f)),
        Value::Array(items) => items.iter().for_each(|v| visit(v, secret, f)),
        Value::String(s) => f(secret, s),
        Value::Number(n) => f(secret, &n.to_string()),
        Value::Bool(_) | Value::Null => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_datadog_scrubs_are_secret() {
        for key in [
            "password", "pass", "pwd", "mysql_password", "PASSWORD", "api_key", "x_api_key", "apikey", "app_key", "application_key",
            "bearer_token", "token", "jwt", "client_secret", "secret", "secret_id_secret_id", "aws_access_key", "tls_private_key",
            "private_key", "Authorization", "cookie", "community_string", "X-Vault-Token", "x-api-key", "x-auth", "consumer_key",
            "auth_key", "privKey", "session_token",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in ["username", "user", "url", "host", "port", "tags", "tls_cert", "tls_verify", "headers", "service", "timeout", "x-forwarded-for"] {
            assert!(!is_secret_key(key), "{key}");
        }
    }

    #[test]
    fn values_under_secret_keys_are_masked_and_learnt() {
        let scrubber = Scrubber::default();
        scrubber.add("from-env-value");
        let config = json!({
            "url": "http://db/from-env-value/x",
            "password": "hunter2-pw",
            "port": 5432,
            "empty_password": "",
            "headers": {"Authorization": "Bearer abcdef", "Accept": "text/plain"},
            "additional_endpoints": {"https://a": ["key-one", "key-two"]},
            "api_key": 12345678,
        });
        let masked = mask(&config, &scrubber);
        assert_eq!(
            masked,
            json!({
                "url": "http://db/********/x",
                "password": MASK,
                "port": 5432,
                "empty_password": "",
                "headers": {"Authorization": MASK, "Accept": "text/plain"},
                "additional_endpoints": {"https://a": [MASK, MASK]},
                "api_key": MASK,
            })
        );
        learn(&config, &scrubber);
        assert_eq!(scrubber.scrub("hunter2-pw Bearer abcdef key-two 12345678 5432 text/plain"), "******** ******** ******** ******** 5432 text/plain");
    }
}
