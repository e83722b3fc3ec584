//! The `adrt` binary: all logic lives in the library; `main` only maps the outcome to an exit code.

fn main() -> std::process::ExitCode {
    adrt::cli::main()
}
