//! The C ABI for Go and other C hosts (issue 6).
