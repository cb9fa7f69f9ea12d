//! `cargo xtask wasm`: build the npm package into wasm/pkg/ and run its Node and browser tests (issue 4).

/// Runs `cargo xtask wasm [args]`.
pub(crate) fn run(_args: &[String]) -> Result<(), String> {
    Err("cargo xtask wasm: not built yet (issue 4)".into())
}
