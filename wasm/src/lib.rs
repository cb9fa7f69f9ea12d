//! turnout compiled to WebAssembly (issue 4).
