//! Fuzz target: arbitrary bytes as a facets JSON object, evaluated against a
//! fixed config that uses every op and both strategies. Must never panic.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use turnout_core::{Client, Facets};

#[path = "common.rs"]
mod common;

fn fixed() -> &'static (Client, Vec<String>) {
    static C: OnceLock<(Client, Vec<String>)> = OnceLock::new();
    C.get_or_init(|| {
        let c = common::client();
        c.update_config(common::FIXED_CONFIG.as_bytes())
            .expect("the fixed config loads");
        let names = c.variable_names();
        (c, names)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(facets) = Facets::from_json_str(text) else {
        return;
    };
    let _ = facets.to_json();
    for f in facets.iter() {
        let _ = (f.key(), f.canonical(), f.num());
    }
    let (client, names) = fixed();
    common::evaluate(client, names, &facets);
});
