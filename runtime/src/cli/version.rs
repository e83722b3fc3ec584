//! `adrt version`: what `datadog-agent version` tells, for adrt: its version and the check
//! contract (the WIT package of wit/check.wit) components are built against.

use std::process::ExitCode;

/// The contract this binary was built with.
const WIT: &str = include_str!("../../../wit/check.wit");

pub fn run() -> anyhow::Result<ExitCode> {
    println!("adrt {} - check contract: {}", env!("CARGO_PKG_VERSION"), contract());
    Ok(ExitCode::SUCCESS)
}

/// `adrt:check@0.1.1`: the name of the `package` line of the WIT.
fn contract() -> &'static str {
    WIT.lines()
        .find_map(|line| line.trim().strip_prefix("package "))
        .map_or("unknown", |name| name.trim_end_matches(';').trim())
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_the_wit_package() {
        let contract = super::contract();
        assert!(contract.starts_with("adrt:check@0."), "{contract}");
    }
}
