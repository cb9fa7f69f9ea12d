// Where things are, from wasm/js/test/support/.
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
export const PKG = path.join(ROOT, 'wasm/pkg');
export const VECTORS = path.join(ROOT, 'tests/conformance');
export const RESULTS = path.join(ROOT, 'target/conformance');
