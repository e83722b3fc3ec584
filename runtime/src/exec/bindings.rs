//! The one `bindgen!` of the host: Rust types and traits for `wit/check.wit`.
//!
//! I/O imports (`http`, `http-tls`, `http-client`, `files`, `filesystems`) are async so a slow peer never
//! blocks a thread; `submit`, `log` and `state` may trap, which is how a check that floods the
//! host is stopped.
//!
//! The imports are linked through the generated `Check::add_to_linker`. The exports are not
//! called through the generated `Check`/`CheckPre`, which require every export of the world, but
//! through [`super::exports`], where `validate` (new in 0.1.1) is optional.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "check",
    imports: {
        "adrt:check/http": async,
        "adrt:check/http-tls": async,
        "adrt:check/http-client": async,
        "adrt:check/files": async,
        "adrt:check/filesystems": async,
        "adrt:check/submit": trappable,
        "adrt:check/log": trappable,
        "adrt:check/state": trappable,
    },
});
