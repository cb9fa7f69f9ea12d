//! `cargo xtask swift`: generate the Swift package; build and test it where a Swift toolchain exists (issue 5).

/// Runs `cargo xtask swift [args]`.
pub(crate) fn run(_args: &[String]) -> Result<(), String> {
    Err("cargo xtask swift: not built yet (issue 5)".into())
}
