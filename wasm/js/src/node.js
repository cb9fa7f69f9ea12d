// Node.js (and Deno) entry: instantiates the WebAssembly module synchronously
// from the file next to this one, then exposes the facade.
import { readFileSync } from 'node:fs';
import { initSync } from './wasm/turnout_wasm.js';

initSync({ module: readFileSync(new URL('./wasm/turnout_wasm_bg.wasm', import.meta.url)) });

export * from './index.js';
