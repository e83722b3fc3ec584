//! Sources compiled into the binary so that `adrt new` and `adrt build` work away from the
//! repository: the contract, the Rust SDK and the workspace manifest it inherits from (the
//! build script lists them; see `runtime/build.rs`).

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
