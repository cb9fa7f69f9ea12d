//! UniFFI exports for Kotlin, Swift and Python (issue 5).
