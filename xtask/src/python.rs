//! `cargo xtask python`: build the Python package and run its tests (issue 5).

/// Runs `cargo xtask python [args]`.
pub(crate) fn run(_args: &[String]) -> Result<(), String> {
    Err("cargo xtask python: not built yet (issue 5)".into())
}
