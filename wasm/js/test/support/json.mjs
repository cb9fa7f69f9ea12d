// JSON helpers shared by the Node tests and the browser page.

/**
 * JSON.parse that keeps every integer exact: integer literals outside the
 * safe range and `{"$int64": "..."}` objects become BigInt. (A plain
 * JSON.parse would round 9007199254740993 to ...992.)
 */
export function parseExact(text) {
  let out = '';
  let i = 0;
  let start = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      i++;
      while (i < n && text.charCodeAt(i) !== 34) i += text.charCodeAt(i) === 92 /* \ */ ? 2 : 1;
      i++;
    } else if (c === 45 /* - */ || (c >= 48 && c <= 57)) {
      const s = i;
      i++;
      while (i < n && /[0-9.eE+-]/.test(text[i])) i++;
      const lit = text.slice(s, i);
      if (/^-?\d+$/.test(lit) && !Number.isSafeInteger(Number(lit))) {
        out += text.slice(start, s) + `{"$int64":"${lit}"}`;
        start = i;
      }
    } else i++;
  }
  out += text.slice(start);
  return JSON.parse(out, (_k, v) =>
    v !== null && typeof v === 'object' && typeof v.$int64 === 'string' && Object.keys(v).length === 1
      ? BigInt(v.$int64)
      : v,
  );
}

/** Structural equality of JSON-like values (numbers by value, BigInt exact, key order ignored). */
export function same(a, b) {
  if (a === b) return true;
  if (typeof a === 'bigint' || typeof b === 'bigint') {
    return (typeof a === 'bigint' || Number.isInteger(a)) && (typeof b === 'bigint' || Number.isInteger(b)) && BigInt(a) === BigInt(b);
  }
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) return a.length === b.length && a.every((x, i) => same(x, b[i]));
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && same(a[k], b[k]));
}

/** JSON.stringify that prints BigInts (for messages). */
export function show(v) {
  return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x));
}

export function hexToBytes(hex) {
  const b = new Uint8Array(hex.length / 2);
  for (let i = 0; i < b.length; i++) b[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return b;
}

export function bytesToHex(bytes) {
  return Array.from(bytes, (x) => x.toString(16).padStart(2, '0')).join('');
}
