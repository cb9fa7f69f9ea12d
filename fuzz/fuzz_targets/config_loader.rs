//! Fuzz target: arbitrary bytes as a config bundle. Loading must either
//! succeed or return an error; evaluating whatever loaded must never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let client = common::client();
    let _ = client.validate(data);
    if client.update_config(data).is_err() {
        return;
    }
    // A second update with the same bytes (exercises diff / last-good logic),
    // then with the fixed config (documents may be replaced or removed).
    let _ = client.update_config(data);
    let names = common::names(&client);
    for f in common::probe_facets() {
        common::evaluate(&client, &names, &f);
    }
    let _ = client.update_config(common::FIXED_CONFIG.as_bytes());
    let _ = client.update_config(data);
});
