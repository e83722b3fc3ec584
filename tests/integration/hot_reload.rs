//! checks.d reloads while the agent runs: a new check schedules the configs waiting for it, a
//! replaced one moves its instances to the new version without missing runs, a removed one is
//! unscheduled with its reason, and a broken or half-written file leaves the old version running
//! — while a neighbour check keeps its runs going throughout. The real agent binary, a scratch
//! checks.d, and real components: `versioned-1.wasm` / `versioned-2.wasm` (one check reporting
//! 1.0.0 and 2.0.0) and the hostile check in its `ok` mode as the neighbour.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::agent::RunningAgent;
use crate::util::{engine, scratch_dir, test_checks_dir};
use adrt::exec::{CheckRegistry, Reload};

/// The agent's debounce of checks.d, and then some: a change is acted on by then.
const SETTLED: Duration = Duration::from_millis(1500);

/// `adrt run` with no pods, conf.d asking for the `versioned` check and the hostile neighbour
/// every second, and a scratch checks.d holding the neighbour and, if given, `versioned-<n>`.
struct Scene {
    agent: RunningAgent,
    checks: PathBuf,
    dir: PathBuf,
}

impl Scene {
    fn start(tag: &str, versioned: Option<u8>) -> Scene {
        let dir = scratch_dir(tag);
        let (checks, conf) = (dir.join("checks.d"), dir.join("conf.d"));
        std::fs::create_dir_all(&checks).unwrap();
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::copy(test_checks_dir().join("hostile.wasm"), checks.join("hostile.wasm")).unwrap();
        if let Some(major) = versioned {
            std::fs::copy(versioned_component(major), checks.join("versioned.wasm")).unwrap();
        }
        std::fs::write(conf.join("hostile.yaml"), "instances:\n  - mode: ok\n    min_collection_interval: 1\n").unwrap();
        std::fs::write(conf.join("versioned.yaml"), "instances:\n  - min_collection_interval: 1\n").unwrap();
        let agent = RunningAgent::start(&["--listener", "none", "--conf-dir", path(&conf), "--checks-dir", path(&checks)]);
        Scene { agent, checks, dir }
    }

    fn versioned(&self) -> PathBuf {
        self.checks.join("versioned.wasm")
    }

    /// Waits until the versioned check runs `version` and has run twice on it; returns the status.
    async fn wait_running(&self, version: &str) -> Value {
        let what = format!("the versioned check runs {version}");
        let runs_at_start = std::sync::Mutex::new(None::<u64>);
        self.agent
            .wait_for(&what, |info| {
                let Some(check) = check(info, "versioned") else { return false };
                let runs = runs(info, "versioned");
                if check["version"] != version || check["instances"][0]["status"] != "OK" {
                    return false;
                }
                // Twice since the version showed: the version is not only reported, it runs.
                let first = *runs_at_start.lock().unwrap().get_or_insert(runs);
                runs >= first + 2
            })
            .await
    }

    /// The reasons the agent gives for the unresolved configs of `check`.
    async fn unresolved_reasons(&self, check: &str) -> Vec<String> {
        let configs = self.agent.configcheck().await;
        let unresolved = configs["unresolved"].as_array().cloned().unwrap_or_default();
        unresolved.iter().filter(|u| u["check"] == check).map(|u| u["reason"].as_str().unwrap_or_default().to_string()).collect()
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn versioned_component(major: u8) -> PathBuf {
    test_checks_dir().join(format!("versioned-{major}.wasm"))
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn check<'a>(info: &'a Value, name: &str) -> Option<&'a Value> {
    info["checks"].as_array()?.iter().find(|c| c["name"] == name)
}

/// Runs of the first instance of `name` so far (0 when it has none).
fn runs(info: &Value, name: &str) -> u64 {
    check(info, name).and_then(|c| c["instances"][0]["total_runs"].as_u64()).unwrap_or(0)
}

/// The neighbour ran OK at least `n` more times than in `before`.
fn neighbour_ran(before: &Value, now: &Value, n: u64) -> bool {
    runs(now, "hostile") >= runs(before, "hostile") + n && check(now, "hostile").is_some_and(|c| c["instances"][0]["status"] == "OK")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_check_schedules_the_config_waiting_for_it() {
    let scene = Scene::start("reload-add", None);
    let first = scene.agent.wait_for("the neighbour runs", |info| runs(info, "hostile") >= 1).await;
    assert!(check(&first, "versioned").is_none(), "{first:#}");
    let reasons = scene.unresolved_reasons("versioned").await;
    assert!(reasons.len() == 1 && reasons[0].contains("no check component `versioned.wasm`"), "{reasons:?}");

    std::fs::copy(versioned_component(1), scene.versioned()).unwrap();
    let info = scene.wait_running("1.0.0").await;
    let versioned = check(&info, "versioned").unwrap();
    assert_eq!(versioned["path"], path(&scene.versioned()), "{versioned:#}");
    assert!(versioned["manifest"].is_null() && versioned["load_error"].is_null(), "{versioned:#}");
    assert_eq!(scene.unresolved_reasons("versioned").await, Vec::<String>::new());
    let text = scene.agent.info_text().await;
    assert!(text.contains(&format!("    versioned (1.0.0)\n    -----------------\n      Loaded from {}, no manifest\n", path(&scene.versioned()))), "{text}");
    assert!(scene.agent.log().contains("check component loaded"), "{}", scene.agent.log());
    let later = scene.agent.wait_for("the neighbour keeps running", |now| neighbour_ran(&first, now, 3)).await;
    assert!(runs(&later, "versioned") >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_check_moves_to_its_new_version_without_missing_a_run() {
    let scene = Scene::start("reload-replace", Some(1));
    let before = scene.wait_running("1.0.0").await;
    // Both instances, polled until well after the switch: no gap between two runs (as seen by a
    // poll every 100 ms) may be longer than two intervals, that is one missed run at most.
    let mut last_change: [(u64, Instant); 2] = [(runs(&before, "versioned"), Instant::now()), (runs(&before, "hostile"), Instant::now())];
    let mut longest = [Duration::ZERO; 2];
    std::fs::copy(versioned_component(2), scene.versioned()).unwrap();
    let replaced = Instant::now();
    let mut switched: Option<Instant> = None;
    while switched.is_none_or(|at| at.elapsed() < Duration::from_secs(3)) {
        assert!(replaced.elapsed() < Duration::from_secs(30), "version 2.0.0 did not show\n{}", scene.agent.log());
        if let Some(info) = scene.agent.info().await {
            for (n, name) in ["versioned", "hostile"].into_iter().enumerate() {
                let runs = runs(&info, name);
                if runs != last_change[n].0 {
                    longest[n] = longest[n].max(last_change[n].1.elapsed());
                    last_change[n] = (runs, Instant::now());
                }
            }
            let versioned = check(&info, "versioned").unwrap();
            assert_eq!(versioned["instances"][0]["status"], "OK", "{versioned:#}");
            if switched.is_none() && versioned["version"] == "2.0.0" {
                switched = Some(Instant::now());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (n, name) in ["versioned", "hostile"].into_iter().enumerate() {
        assert!(longest[n] < Duration::from_millis(2500), "{name}: {:?} between two runs\n{}", longest[n], scene.agent.log());
    }
    let after = scene.wait_running("2.0.0").await;
    assert!(runs(&after, "versioned") >= runs(&before, "versioned") + 3, "{after:#}");
    assert!(check(&after, "versioned").unwrap()["load_error"].is_null());
    assert!(scene.agent.log().contains("check reloaded"), "{}", scene.agent.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_check_is_unscheduled_with_its_reason() {
    let scene = Scene::start("reload-remove", Some(1));
    let before = scene.wait_running("1.0.0").await;
    std::fs::remove_file(scene.versioned()).unwrap();
    let after = scene.agent.wait_for("the versioned check is unscheduled", |info| check(info, "versioned").is_none()).await;
    let reasons = scene.unresolved_reasons("versioned").await;
    assert!(reasons.len() == 1 && reasons[0].contains("no check component `versioned.wasm`"), "{reasons:?}");
    assert!(scene.agent.log().contains("check component removed"), "{}", scene.agent.log());
    scene.agent.wait_for("the neighbour keeps running", |now| neighbour_ran(&before, now, 2) && check(now, "versioned").is_none()).await;
    assert!(check(&after, "hostile").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_file_is_reported_and_the_old_version_keeps_running() {
    let scene = Scene::start("reload-corrupt", Some(1));
    scene.wait_running("1.0.0").await;
    std::fs::write(scene.versioned(), b"\0asm but not really: garbage bytes").unwrap();
    let broken = scene
        .agent
        .wait_for("the load error", |info| check(info, "versioned").is_some_and(|c| !c["load_error"].is_null()))
        .await;
    let error = check(&broken, "versioned").unwrap()["load_error"].as_str().unwrap().to_string();
    assert!(error.contains(path(&scene.versioned())) && error.contains("not a valid adrt check component"), "{error}");
    // Still 1.0.0, still running, still loaded from the same place.
    let runs_then = runs(&broken, "versioned");
    let still = scene
        .agent
        .wait_for("runs go on with 1.0.0", |info| runs(info, "versioned") >= runs_then + 2 && check(info, "versioned").unwrap()["version"] == "1.0.0")
        .await;
    let versioned = check(&still, "versioned").unwrap();
    assert_eq!(versioned["instances"][0]["status"], "OK", "{versioned:#}");
    assert_eq!(versioned["path"], path(&scene.versioned()));
    assert!(neighbour_ran(&broken, &still, 1), "{still:#}");
    let text = scene.agent.info_text().await;
    assert!(text.contains("      Load error (the version loaded before keeps running): "), "{text}");
    // Logged once, not at every run.
    let log = scene.agent.log();
    assert_eq!(log.matches("changed check does not load").count(), 1, "{log}");
    // A good file clears the error.
    std::fs::copy(versioned_component(2), scene.versioned()).unwrap();
    let fixed = scene.wait_running("2.0.0").await;
    assert!(check(&fixed, "versioned").unwrap()["load_error"].is_null(), "{fixed:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_written_copy_does_not_stop_the_old_version_and_loads_once_complete() {
    let scene = Scene::start("reload-half", Some(1));
    scene.wait_running("1.0.0").await;
    // As `cp` writes: the same file, truncated, then filled in two halves with a pause longer
    // than the debounce between them.
    let new = std::fs::read(versioned_component(2)).unwrap();
    let (first, rest) = new.split_at(new.len() / 2);
    let mut file = std::fs::OpenOptions::new().write(true).truncate(true).open(scene.versioned()).unwrap();
    std::io::Write::write_all(&mut file, first).unwrap();
    std::io::Write::flush(&mut file).unwrap();
    tokio::time::sleep(SETTLED).await;
    let half = scene
        .agent
        .wait_for("the half-written file's error", |info| check(info, "versioned").is_some_and(|c| !c["load_error"].is_null()))
        .await;
    let runs_then = runs(&half, "versioned");
    let between = scene
        .agent
        .wait_for("1.0.0 runs on", |info| runs(info, "versioned") >= runs_then + 2 && check(info, "versioned").unwrap()["version"] == "1.0.0")
        .await;
    assert_eq!(check(&between, "versioned").unwrap()["instances"][0]["status"], "OK", "{between:#}");
    std::io::Write::write_all(&mut file, rest).unwrap();
    drop(file);
    let complete = scene.wait_running("2.0.0").await;
    assert!(check(&complete, "versioned").unwrap()["load_error"].is_null(), "{complete:#}");
    assert!(neighbour_ran(&half, &complete, 3), "{complete:#}");
}

/// The registry itself: what changed is reloaded (and nothing else), an instance leased from a
/// replaced version is not taken back into the new version's pool, and a broken component or
/// manifest keeps the old version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_of_a_replaced_version_is_not_taken_back() {
    let dir = scratch_dir("reload-registry");
    let file = dir.join("versioned.wasm");
    std::fs::copy(versioned_component(1), &file).unwrap();
    let registry = CheckRegistry::new(engine(Duration::from_secs(5)), dir.clone());
    registry.note_files();
    assert_eq!(registry.reload_changed(), Vec::new(), "nothing changed");

    let old_pool = registry.pool("", "versioned", "{}").unwrap();
    let old = registry.take(&old_pool).await.unwrap();
    assert_eq!(old.info().version, "1.0.0");
    std::fs::copy(versioned_component(2), &file).unwrap();
    assert_eq!(registry.reload_changed(), vec![Reload::Replaced { check: "versioned".into() }]);
    assert_eq!(registry.reload_changed(), Vec::new(), "reloaded once");
    // The run on the old version ends after the swap: its instance is dropped, slot and all.
    registry.give_back(&old_pool, old);
    assert_eq!(registry.live_instances(), 0);
    let pool = registry.pool("", "versioned", "{}").unwrap();
    let new = registry.take(&pool).await.unwrap();
    assert_eq!(new.info().version, "2.0.0");
    registry.give_back(&pool, new);
    assert_eq!(registry.live_instances(), 1);

    std::fs::write(&file, b"garbage").unwrap();
    let reloads = registry.reload_changed();
    assert!(matches!(&reloads[..], [Reload::Failed { check, error }] if check == "versioned" && error.contains("not a valid")), "{reloads:?}");
    let state = &registry.load_states()["versioned"];
    assert_eq!((state.version.as_deref(), state.path.as_deref()), (Some("2.0.0"), Some(file.as_path())));
    assert!(state.load_error.is_some());
    let pool = registry.pool("", "versioned", "{}").unwrap();
    assert_eq!(registry.take(&pool).await.unwrap().info().version, "2.0.0", "the idle 2.0.0 instance serves on");

    // A manifest is part of the check: one that does not parse, or asks more memory than the
    // engine's slots hold, does not load either; the component beside it keeps its last version.
    std::fs::copy(versioned_component(1), &file).unwrap();
    let manifest = dir.join("versioned.toml");
    for (text, expected) in [("[limits]\nmemory = 32\n", "unknown field `memory`"), ("[limits]\nmemory_mib = 4096\n", "limits.memory_mib 4096")] {
        std::fs::write(&manifest, text).unwrap();
        let reloads = registry.reload_changed();
        assert!(
            matches!(&reloads[..], [Reload::Failed { error, .. }] if error.contains("versioned") && error.contains(expected)),
            "{reloads:?}"
        );
        assert_eq!(registry.load_states()["versioned"].version.as_deref(), Some("2.0.0"));
    }
    std::fs::write(&manifest, "[limits]\nmemory_mib = 32\n").unwrap();
    assert_eq!(registry.reload_changed(), vec![Reload::Replaced { check: "versioned".into() }]);
    let state = &registry.load_states()["versioned"];
    assert_eq!((state.manifest.as_deref(), state.load_error.as_deref()), (Some(manifest.as_path()), None));
    let pool = registry.pool("", "versioned", "{}").unwrap();
    assert_eq!(registry.take(&pool).await.unwrap().info().version, "1.0.0");

    std::fs::remove_file(&file).unwrap();
    assert_eq!(registry.reload_changed(), vec![Reload::Removed { check: "versioned".into() }]);
    assert!(registry.load_states().is_empty());
    let _ = std::fs::remove_dir_all(dir);
}
