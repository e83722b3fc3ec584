//! The one `bindgen!` of the host: Rust types and traits for `wit/check.wit`.
//!
//! I/O imports (`http`, `files`) are async so a slow peer never blocks a thread; `submit`,
//! `log` and `state` may trap, which is how a check that floods the host is stopped.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "check",
    imports: {
        "adrt:check/http": async,
        "adrt:check/files": async,
        "adrt:check/submit": trappable,
        "adrt:check/log": trappable,
        "adrt:check/state": trappable,
    },
    exports: { default: async },
});
