//! http_check against a local nginx, over HTTP and over HTTPS, next to a bare GET of the same
//! page by the host's own HTTP client (reqwest) in the same run: what the check adds to its one
//! request (the sandbox crossing, the certificate's parsing, the regex, the submissions).

use std::path::Path;
use std::time::Instant;

use adrt::exec::LiveInstance;
use adrt_testkit::local_nginx::LocalNginx;

use super::{Setup, Table, median};

pub async fn section(setup: &Setup, checks_dir: &Path, n: u32, table: &mut Table) -> anyhow::Result<()> {
    let dir = adrt_testkit::scratch_dir("bench-http-check");
    let (cert, key) = adrt_testkit::self_signed_certificate(&dir, "bench");
    let page = "location / { return 200 \"status: healthy\\n\"; }";
    let plain = LocalNginx::start_with("127.0.0.1", |addr, _| format!("server {{ listen {addr}; {page} }}"))?;
    let tls = LocalNginx::start_with("127.0.0.1", |addr, _| {
        format!("server {{ listen {addr} ssl; ssl_certificate {}; ssl_certificate_key {}; {page} }}", cert.display(), key.display())
    })?;
    let engine = setup.engine()?;
    let loaded = engine.load(checks_dir, "http_check")?;
    let mut live = LiveInstance::start(&engine, &loaded, "{}").await?;
    // The certificate is self-signed: neither side verifies it, as the check's default.
    let client = reqwest::Client::builder().danger_accept_invalid_certs(true).build()?;
    for (scheme, nginx) in [("http", &plain), ("https", &tls)] {
        let url = format!("{scheme}://{}/health", nginx.addr);
        let instance = serde_json::json!({ "name": "bench", "url": url, "content_match": "healthy" }).to_string();
        // Interleaved, so that a change in the machine's load weighs on both sides alike.
        let (mut runs, mut gets) = (Vec::new(), Vec::new());
        for i in 0..n + 20 {
            let t = Instant::now();
            let outcome = live.run("http_check:bench", &instance, &adrt::policy::Reach::Operator).await;
            anyhow::ensure!(outcome.error.is_none(), "http_check failed: {:?}", outcome.error);
            let run = t.elapsed();
            let t = Instant::now();
            let response = client.get(&url).send().await?;
            anyhow::ensure!(response.status() == 200, "{url}: HTTP {}", response.status());
            response.bytes().await?;
            if i >= 20 {
                runs.push(run);
                gets.push(t.elapsed());
            }
        }
        table.row(&format!("http_check run vs bare GET ({scheme})"), ("check", median(runs)), ("GET", median(gets)), None);
    }
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
