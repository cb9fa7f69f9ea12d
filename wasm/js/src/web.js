// Browser and bundler entry: fetches and instantiates the WebAssembly module
// (streaming, from the URL next to the glue: bundlers that understand
// `new URL(..., import.meta.url)` emit it as an asset), then exposes the facade.
// Importing this module waits for the instantiation (top-level await).
import init from './wasm/turnout_wasm.js';

await init();

export * from './index.js';
