//! `cargo xtask kotlin`: build the Kotlin/JVM package and run its tests (issue 5).

/// Runs `cargo xtask kotlin [args]`.
pub(crate) fn run(_args: &[String]) -> Result<(), String> {
    Err("cargo xtask kotlin: not built yet (issue 5)".into())
}
