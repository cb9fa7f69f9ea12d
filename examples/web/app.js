// The playground: one turnout Client in the page. Editing the config calls
// updateConfig (a broken config is reported and the last good one stays in
// force, exactly as in an app); editing the facets re-evaluates with
// explain(), which records nothing.
import { Client, TurnoutError, engineInfo } from 'turnout';

const $ = (id) => document.getElementById(id);
const client = new Client({ service: 'playground', decisionEvents: 'off' });
let timer = null;

/** `name=value` lines (numbers, booleans, "quoted strings", ids above 2^53 as BigInt) or a JSON object. */
export function parseFacets(text) {
  const t = text.trim();
  if (t.startsWith('{')) {
    // Keep big integers exact: wrap unsafe integer literals before JSON.parse.
    const safe = t.replace(/("(?:[^"\\]|\\.)*")|(-?\d{16,})(?![\d.eE])/g, (m, str, num) =>
      str !== undefined || Number.isSafeInteger(Number(num)) ? m : `{"$int64":"${num}"}`,
    );
    const o = JSON.parse(safe);
    if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new Error('facets JSON must be an object');
    return o;
  }
  const facets = {};
  for (const [i, raw] of t.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = line.match(/^([^=:\s]+)\s*[=:]\s*(.*)$/);
    if (!m) throw new Error(`line ${i + 1}: expected name=value`);
    const [, name, v] = m;
    if (/^-?\d+$/.test(v)) facets[name] = Number.isSafeInteger(Number(v)) ? Number(v) : BigInt(v);
    else if (/^-?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$/.test(v)) facets[name] = Number(v);
    else if (v === 'true' || v === 'false') facets[name] = v === 'true';
    else if (/^".*"$/.test(v)) facets[name] = v.slice(1, -1);
    else facets[name] = v;
  }
  return facets;
}

function status(el, cls, text) {
  el.className = cls;
  el.textContent = text;
}

function loadConfig() {
  const el = $('config-status');
  try {
    const r = client.updateConfig($('config').value);
    const names = client.variableNames();
    const lines = [`config in force: ${names.length} variable${names.length === 1 ? '' : 's'}` +
      (r.version !== null ? `, version ${r.version}` : '')];
    for (const rej of r.rejected) lines.push(`rejected document (${rej.keptLastGood ? 'last good version kept' : 'no last good version'}): ${rej.problems.map((p) => `${p.document} ${p.field}: ${p.message}`).join('; ')}`);
    for (const w of r.warnings) lines.push(`warning: ${w.document} ${w.field}: ${w.message}`);
    status(el, r.rejected.length || r.warnings.length ? 'warn' : 'ok', lines.join('\n'));
    const select = $('variable');
    const current = select.value;
    select.replaceChildren(...names.map((n) => new Option(n, n)));
    if (names.includes(current)) select.value = current;
  } catch (e) {
    const detail = e instanceof TurnoutError ? e.problems.map((p) => `• ${p.document}${p.field ? ` ${p.field}` : ''}: ${p.message}`).join('\n') : String(e);
    status(el, 'error', `rejected, the last good config stays in force:\n${detail || e.message}`);
  }
  decide();
}

function show(v) {
  return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
}

function decide() {
  const name = $('variable').value;
  let facets;
  try {
    facets = parseFacets($('facets').value);
    status($('facets-status'), 'ok', `${Object.keys(facets).length} facet(s)`);
  } catch (e) {
    status($('facets-status'), 'error', e.message);
    return;
  }
  if (!name) return;
  try {
    const { decision: d, steps } = client.explain(name, facets);
    $('value').textContent = d.value === null ? '(none: your default applies)' : show(d.value);
    $('source').textContent = d.source;
    $('reason').textContent = d.reason + (d.errorCode ? ` (${d.errorCode})` : '');
    $('matched').textContent =
      d.experiment !== null ? `experiment ${d.experiment}, choice ${d.choice}`
        : d.rule !== null ? `rule ${d.rule}${d.label ? ` ("${d.label}")` : ''}` : '-';
    $('steps').replaceChildren(...steps.map((s) => Object.assign(document.createElement('li'), { textContent: s })));
    $('decision-json').textContent = show(d);
  } catch (e) {
    status($('facets-status'), 'error', e.message);
  }
}

function later(fn) {
  clearTimeout(timer);
  timer = setTimeout(fn, 150);
}

async function fetchConfig(url) {
  $('config').value = await (await fetch(url)).text();
  loadConfig();
}

$('config').addEventListener('input', () => later(loadConfig));
$('facets').addEventListener('input', () => later(decide));
$('variable').addEventListener('change', decide);
for (const b of document.querySelectorAll('[data-config]')) b.addEventListener('click', () => fetchConfig(b.dataset.config));
const info = engineInfo();
$('engine').textContent = `turnout engine ${info.version}, spec ${info.specVersion}, WebAssembly`;
await fetchConfig('../configs/seed-rollout.json');
document.body.dataset.ready = 'true';
