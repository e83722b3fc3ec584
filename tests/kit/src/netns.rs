//! A network namespace with loopback only, for the tests that check a destination is refused
//! (the cloud metadata address, another network): if the agent had a bug there, what it sent
//! would go nowhere — the namespace has no route off this machine.

use std::process::Command;

/// Runs `test` on a thread of its own that entered a fresh network namespace with only `lo` (up).
/// Everything the test starts from that thread — nginx, the agent, a tokio runtime built there
/// and the threads it spawns — lives in that namespace. Needs root (CAP_SYS_ADMIN), as the
/// tests have.
pub fn in_loopback_only_namespace<R: Send>(test: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|scope| {
        let thread = scope.spawn(|| {
            // SAFETY: unshare(CLONE_NEWNET) changes the namespace of this thread only.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                panic!("entering a new network namespace: {} (the tests run as root)", std::io::Error::last_os_error());
            }
            let up = Command::new("ip").args(["link", "set", "lo", "up"]).status().expect("running `ip link set lo up`");
            assert!(up.success(), "`ip link set lo up` failed in the new namespace");
            let routes = Command::new("ip").args(["-o", "route", "show", "table", "all"]).output().expect("ip route");
            let routes = String::from_utf8_lossy(&routes.stdout);
            assert!(
                routes.lines().all(|route| route.contains(" dev lo ")),
                "the namespace must route nowhere but loopback: {routes}"
            );
            test()
        });
        thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
