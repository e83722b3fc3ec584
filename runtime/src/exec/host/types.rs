//! The `types` interface declares only types.

use crate::exec::bindings::adrt::check::types::Host;
use crate::exec::store::StoreState;

impl Host for StoreState {}
