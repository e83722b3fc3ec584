//! Write adrt checks in Rust.
//!
//! A check is a type implementing [`Check`], exported with [`export_check!`]. It reads like a
//! Datadog `AgentCheck`: typed configs through serde, `gauge`/`rate`/`count`/... on the
//! [`Context`], `http_get` and `read_file` for I/O.
//!
//! ```no_run
//! use adrt_check_sdk::{Check, CheckError, Context};
//!
//! #[derive(serde::Deserialize)]
//! struct Instance { url: String }
//!
//! struct Hello;
//!
//! impl Check for Hello {
//!     const NAME: &'static str = "hello";
//!     const VERSION: &'static str = "1.0.0";
//!     type InitConfig = serde_json::Value;
//!     type Instance = Instance;
//!
//!     fn init(_: Self::InitConfig) -> Result<Self, CheckError> { Ok(Hello) }
//!
//!     fn run(&self, ctx: &mut Context<'_>, instance: Instance) -> Result<(), CheckError> {
//!         let page = ctx.http_get(&instance.url, &Default::default())?;
//!         ctx.gauge("hello.page_bytes", page.body.len() as f64, &[]);
//!         Ok(())
//!     }
//! }
//!
//! adrt_check_sdk::export_check!(Hello);
//! ```
//!
//! # Validation
//! The macro also exports `validate`, which the agent calls to lint a config without running
//! it: the init_config and instance are parsed by the same serde types and passed to the same
//! [`Check::init`] as for a run, so a config a run would refuse is refused with the same message
//! (`invalid instance: missing field ...`), and the same ``unknown key `NAME` `` warnings. What `run` checks of its instance beyond serde
//! belongs in a function that both `run` and [`Check::validate`] call; `validate` may also give
//! warnings. Its default finds nothing more.
//!
//! # Versions
//! The SDK builds against the current `adrt:check` contract (`wit/check.wit`, 0.1.1). Components
//! built with it need an agent of that version or later within 0.1.x; an agent of 0.1.1 also
//! runs components built against 0.1.0. [`Context::http_with_certificate`] and
//! [`Context::filesystem_usage`] and [`Context::http_with_options`] came in 0.1.1.
//!
//! # Layout
//! - `bindings`: the wit-bindgen output for `wit/check.wit` (one `generate!`).
//! - [`host`]: the [`Host`] trait — every import the agent offers — and its wasm implementation.
//! - [`context`]: [`Context`], what a check's `run` talks to.
//! - [`http_options`]: the HTTP options Datadog's HTTP-based checks share ([`HttpOptions`]),
//!   checked once and sent with ([`HttpClient`]).
//! - [`check`]: the [`Check`] trait and the glue the export macro expands to.
//! - [`instance`]: an instance split into the options every check shares and the check's own,
//!   with every unknown key named.
//! - [`testing`]: [`testing::MockHost`], to unit-test a check's logic on the native target.

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "check",
        pub_export_macro: true,
        export_macro_name: "__export_world",
        default_bindings_module: "adrt_check_sdk::bindings",
        generate_all,
    });
}

pub mod check;
pub mod context;
pub mod host;
pub mod http_options;
pub mod instance;
pub mod testing;

pub use check::{Check, CheckError, root_dir};
pub use context::{Context, RequestOptions, Response};
pub use http_options::{HttpClient, HttpInitConfig, HttpInstance, HttpOptions};
pub use host::{
    AgentContext, Certificate, ClientOptions, Describe, DirEntry, EntryKind, FileError, FilesystemUsage, Host, HttpError, Level, MetricKind,
    Status, TlsResponse,
};

/// Re-exported so checks need no direct dependency to parse JSON.
pub use serde_json;

/// Exports a [`Check`] implementation as the component's `info`, `init`, `run` and `validate`.
///
/// Use it once, in the check crate's `lib.rs`.
#[macro_export]
macro_rules! export_check {
    ($check:ty) => {
        #[doc(hidden)]
        pub struct __AdrtCheckExport;

        impl $crate::bindings::Guest for __AdrtCheckExport {
            fn info() -> $crate::bindings::adrt::check::types::CheckInfo {
                $crate::check::info::<$check>()
            }
            fn init(init_config: String) -> Result<(), $crate::bindings::adrt::check::types::CheckError> {
                $crate::check::init::<$check>(&init_config)
            }
            fn run(
                instance_id: String,
                instance: String,
            ) -> Result<(), $crate::bindings::adrt::check::types::CheckError> {
                $crate::check::run::<$check>(&instance_id, &instance)
            }
            fn validate(
                init_config: String,
                instance: String,
            ) -> Result<Vec<String>, $crate::bindings::adrt::check::types::CheckError> {
                $crate::check::validate::<$check>(&init_config, &instance)
            }
        }

        $crate::bindings::__export_world!(__AdrtCheckExport);
    };
}
