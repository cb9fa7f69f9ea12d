// Worker runtime entry (Cloudflare Workers / workerd, through the `workerd`
// export condition): these runtimes forbid compiling WebAssembly from bytes
// at run time, so the module is imported as a precompiled `WebAssembly.Module`
// (wrangler's default rule for `.wasm` imports, a `wasm` module in a workerd
// config) and instantiated synchronously, then the facade is exposed.
import wasmModule from './wasm/turnout_wasm_bg.wasm';
import { initSync } from './wasm/turnout_wasm.js';

initSync({ module: wasmModule });

export * from './index.js';
