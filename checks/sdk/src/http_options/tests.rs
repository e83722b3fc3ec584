use super::*;
use crate::testing::MockHost;
use crate::Response;
use serde_json::json;

fn options(json: Value) -> HttpOptions {
    serde_json::from_value(json).unwrap()
}

fn client(json: Value) -> Result<HttpClient, CheckError> {
    options(json).client(&HttpInitConfig::default(), true)
}

#[test]
fn unsupported_options_are_refused_naming_them_and_their_defaults_accepted() {
    let refused = [
        (json!({"auth_type": "ntlm"}), "auth_type"),
        (json!({"auth_type": "kerberos"}), "auth_type"),
        (json!({"auth_type": "aws"}), "auth_type"),
        (json!({"kerberos_auth": "required"}), "kerberos_auth"),
        (json!({"kerberos": "optional"}), "kerberos_auth"),
        (json!({"kerberos_keytab": "/etc/krb5.keytab"}), "kerberos_keytab"),
        (json!({"ntlm_domain": "CORP"}), "ntlm_domain"),
        (json!({"aws_region": "us-east-1"}), "aws_region"),
        (json!({"tls_use_host_header": true}), "tls_use_host_header"),
        (json!({"tls_protocols_allowed": ["TLSv1.2"]}), "tls_protocols_allowed"),
        (json!({"tls_ciphers": ["ECDHE-RSA-AES128-GCM-SHA256"]}), "tls_ciphers"),
        (json!({"proxy": {"https": "socks5://p:1080"}}), "proxy"),
    ];
    for (json, name) in refused {
        let error = client(json.clone()).unwrap_err();
        let prefix = format!("option `{name}` is not supported by adrt: ");
        assert!(matches!(&error, CheckError::Config(m) if m.starts_with(&prefix)), "{json}: {error:?}");
    }
    let defaults = json!({
        "kerberos_auth": "disabled", "kerberos_delegate": false, "kerberos_force_initiate": false,
        "tls_use_host_header": false, "tls_protocols_allowed": ["SSLv3", "TLSv1.2", "TLSv1.3"], "tls_ciphers": ["ALL"],
        "tls_ignore_warning": true, "persist_connections": true, "log_requests": false, "request_size": 16,
        "skip_proxy": false, "use_legacy_auth_encoding": true,
    });
    let accepted = client(defaults).unwrap();
    assert!(accepted.warnings.is_empty(), "{:?}", accepted.warnings);
    assert!(client(json!({"auth_type": "basic2"})).unwrap_err().to_string().contains("auth_type `basic2`"));
}

#[test]
fn every_key_of_the_struct_is_listed_and_every_listed_key_parses() {
    for key in KEYS {
        let value = match *key {
            "headers" | "extra_headers" | "proxy" | "auth_token" => json!({}),
            "tls_protocols_allowed" => json!([]),
            k if k.contains("timeout") || k == "request_size" => json!(1.0),
            k if k.starts_with("tls_") && !k.ends_with("cert") && !k.ends_with("key") && k != "tls_ciphers" => json!(true),
            "allow_redirects" | "kerberos_delegate" | "kerberos_force_initiate" | "log_requests" | "persist_connections"
            | "skip_proxy" | "no_proxy" | "ssl_verify" | "use_legacy_auth_encoding" => json!(true),
            _ => json!("x"),
        };
        let parsed: HttpInstance<Map<String, Value>> = serde_json::from_value(json!({ *key: value })).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert!(parsed.instance.is_empty(), "{key} was left to the check");
    }
    let parsed: HttpInstance<Map<String, Value>> = serde_json::from_value(json!({"url": "u", "user": "a"})).unwrap();
    assert_eq!((parsed.http.username.as_deref(), parsed.instance.len()), (Some("a"), 1));
}

#[test]
fn headers_then_extra_headers_and_timeouts() {
    let c = client(json!({
        "headers": {"X-A": "1", "X-B": 2}, "extra_headers": {"x-b": "3", "X-C": true},
        "timeout": 3, "connect_timeout": 0.5, "read_timeout": 7, "tls_verify": false,
    }))
    .unwrap();
    assert_eq!(c.headers, [("X-A", "1"), ("X-C", "true"), ("x-b", "3")].map(|(n, v)| (n.to_string(), v.to_string())));
    assert_eq!((c.timeout, c.connect_timeout, c.read_timeout), (Duration::from_secs(3), Some(Duration::from_millis(500)), Some(Duration::from_secs(7))));
    assert!(!c.tls_verify);
    assert!(client(json!({"timeout": -1})).unwrap_err().to_string().contains("timeout must be a positive number"));
    assert!(client(json!({"headers": {"Bad Name": "x"}})).unwrap_err().to_string().contains("not a header name"));
    // init_config's timeout is the default; the instance's wins.
    let init = HttpInitConfig { timeout: Some(4.0), ..HttpInitConfig::default() };
    assert_eq!(options(json!({})).client(&init, true).unwrap().timeout, Duration::from_secs(4));
    assert_eq!(options(json!({"timeout": 1})).client(&init, true).unwrap().timeout, Duration::from_secs(1));
}

#[test]
fn basic_credentials_in_latin_1_or_utf_8() {
    // RFC 7617's example, and its UTF-8 one ("test" / "123£").
    let c = client(json!({"username": "Aladdin", "password": "open sesame"})).unwrap();
    assert_eq!(c.authentication, Authentication::Basic("QWxhZGRpbjpvcGVuIHNlc2FtZQ==".into()));
    let c = client(json!({"username": "test", "password": "123\u{a3}", "use_legacy_auth_encoding": false})).unwrap();
    assert_eq!(c.authentication, Authentication::Basic("dGVzdDoxMjPCow==".into()));
    // A username without a password sends nothing, as Datadog's basic auth.
    assert_eq!(client(json!({"username": "a"})).unwrap().authentication, Authentication::None);
    assert!(client(json!({"auth_type": "digest", "username": "a"})).unwrap_err().to_string().contains("needs both"));
}

#[test]
fn proxies_by_scheme_except_no_proxy_hosts() {
    let c = client(json!({"proxy": {"http": "http://p:3128", "https": "http://s:3128", "no_proxy": ["internal", "10.0.0.0/8", "::1"]}})).unwrap();
    assert_eq!(c.proxy.for_url("http://example.com/x"), Some("http://p:3128"));
    assert_eq!(c.proxy.for_url("https://example.com/x"), Some("http://s:3128"));
    assert_eq!(c.proxy.for_url("http://a.internal:81/"), None);
    assert_eq!(c.proxy.for_url("http://internal/"), None);
    assert_eq!(c.proxy.for_url("http://notinternal/"), Some("http://p:3128"));
    assert_eq!(c.proxy.for_url("http://10.1.2.3/"), None);
    assert_eq!(c.proxy.for_url("http://[::1]:80/"), None);
    assert_eq!(c.proxy.for_url("http://11.0.0.1/"), Some("http://p:3128"));
    // skip_proxy wins, in the instance or init_config; init_config's proxy is the default.
    assert_eq!(client(json!({"skip_proxy": true, "proxy": {"http": "http://p:1"}})).unwrap().proxy, ProxyRule::default());
    let init = HttpInitConfig { proxy: Some(json!({"http": "http://i:1"})), ..HttpInitConfig::default() };
    assert_eq!(options(json!({})).client(&init, true).unwrap().proxy.for_url("http://h/"), Some("http://i:1"));
}

#[test]
fn client_options_go_through_http_client_and_plain_requests_do_not() {
    let mut host = MockHost::default();
    host.http.insert("http://h/".into(), MockHost::ok("ok"));
    client(json!({})).unwrap().get(&mut Context::new(&mut host, "t:1"), "http://h/").unwrap();
    assert!(host.client_options.is_empty());
    let c = client(json!({"proxy": {"http": "http://p:3128"}, "allow_redirects": false, "connect_timeout": 1, "tls_cert": "/c.pem"})).unwrap();
    c.get(&mut Context::new(&mut host, "t:1"), "http://h/").unwrap();
    let (url, sent) = &host.client_options[0];
    assert_eq!(url, "http://h/");
    assert_eq!(sent.proxy.as_deref(), Some("http://p:3128"));
    assert_eq!((sent.allow_redirects, sent.connect_timeout_ms, sent.tls_cert.as_deref()), (false, Some(1000), Some("/c.pem")));
}

#[test]
fn digest_answers_the_servers_challenge() {
    let mut host = MockHost::default();
    let challenge = Response {
        status: 401,
        headers: vec![("WWW-Authenticate".into(), r#"Digest realm="r", nonce="abc", qop="auth""#.into())],
        body: Vec::new(),
    };
    host.http_sequence.insert("http://h/p?q=1".into(), [Ok(challenge)].into_iter().collect());
    host.http.insert("http://h/p?q=1".into(), MockHost::ok("page"));
    let c = client(json!({"auth_type": "digest", "username": "u", "password": "pw"})).unwrap();
    let response = c.get(&mut Context::new(&mut host, "t:1"), "http://h/p?q=1").unwrap();
    assert_eq!(response.response.status, 200);
    assert_eq!(host.requests.len(), 2);
    assert!(host.requests[0].headers.iter().all(|(n, _)| n != "Authorization"));
    let (_, authorization) = host.requests[1].headers.iter().find(|(n, _)| n == "Authorization").unwrap();
    // The response digest recomputed from RFC 7616's formula with the request's own cnonce.
    let field = |name: &str| {
        let start = authorization.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        authorization[start..].split('"').next().unwrap().to_string()
    };
    let md5 = |s: String| format!("{:x}", md5::compute(s));
    let ha1 = md5("u:r:pw".to_string());
    let ha2 = md5("GET:/p?q=1".to_string());
    let expected = md5(format!("{ha1}:abc:00000001:{}:auth:{ha2}", field("cnonce")));
    assert_eq!(field("response"), expected);
    assert_eq!(field("uri"), "/p?q=1");
}

#[test]
fn auth_token_writes_the_files_token_into_its_header() {
    let mut host = MockHost::default();
    host.files.insert("/t".into(), b"s3cret\n".to_vec());
    host.http.insert("http://h/".into(), MockHost::ok("ok"));
    let c = client(json!({"auth_token": {"reader": {"type": "file", "path": "/t"}, "writer": {"type": "header", "name": "X-Token", "value": "Key <TOKEN>"}}})).unwrap();
    c.get(&mut Context::new(&mut host, "t:1"), "http://h/").unwrap();
    assert!(host.requests[0].headers.contains(&("X-Token".to_string(), "Key s3cret".to_string())));
    let bearer = client(json!({"auth_token": {"reader": {"type": "file", "path": "/t"}, "writer": {"type": "header", "name": "Authorization", "value": "Bearer <TOKEN>"}}})).unwrap();
    assert_eq!(bearer.token, Some(TokenAuth::BearerFile("/t".into())));
    // With basic credentials too, both headers go.
    let both = client(json!({"username": "a", "password": "b", "auth_token": {"reader": {"type": "file", "path": "/t"}, "writer": {"type": "header", "name": "X-Token"}}})).unwrap();
    let mut host = MockHost::default();
    host.files.insert("/t".into(), b"tok".to_vec());
    host.http.insert("http://h/".into(), MockHost::ok("ok"));
    both.get(&mut Context::new(&mut host, "t:1"), "http://h/").unwrap();
    let headers = &host.requests[0].headers;
    assert!(headers.contains(&("Authorization".into(), "Basic YTpi".into())) && headers.contains(&("X-Token".into(), "tok".into())), "{headers:?}");
}
