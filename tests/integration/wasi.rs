use crate::util::{adrt_check, test_checks_dir};

#[test]
fn a_wasi_component_runs_and_its_stdout_reaches_the_log() {
    let dir = test_checks_dir();
    let out = adrt_check(&["wasi-hello", "--checks-dir", dir.to_str().unwrap(), "--times", "2"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stderr.matches("hello from a WASI check").count(), 2, "one log line per run:\n{stderr}");
    assert!(stderr.contains("wasi-hello"), "the log line names the check:\n{stderr}");
    assert!(!stdout.contains("hello from a WASI check"), "check output never goes to stdout");
    assert!(stdout.contains("wasi-hello (1.0.0)"), "{stdout}");
}
