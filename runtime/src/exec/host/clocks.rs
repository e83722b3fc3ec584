//! `clocks`: wall and monotonic time.

use std::sync::LazyLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::exec::bindings::adrt::check::clocks::Host;
use crate::exec::store::StoreState;

static START: LazyLock<Instant> = LazyLock::new(Instant::now);

impl Host for StoreState {
    fn now_unix_nanos(&mut self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
    }

    fn monotonic_nanos(&mut self) -> u64 {
        START.elapsed().as_nanos() as u64
    }
}
