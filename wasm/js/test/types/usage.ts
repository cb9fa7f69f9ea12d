// Compiled by types.test.mjs with `tsc --noEmit --strict` against the built
// package: the declarations in index.d.ts must describe this usage.
import { Client, Context, Decision, TurnoutError, Variable, decodeBatch, type UpdateReport } from 'turnout';

const client = new Client({ config: '{}', service: 'booking', decisionEvents: 'experiments', fixedTimeMs: 1, maxConfigBytes: 1 << 20 });
const report: UpdateReport = client.updateConfig({ variable: 'v', rollouts: [], default: 1 });
const added: string[] = report.added;
const d: Decision = client.getVariable('v', { pax: 9007199254740993n, city: 10, country: 'SG', vip: true, gone: null });
const n: number = d.number(30);
const ctx: Context = client.context(new Map([['pax', 7n]]));
const v: Variable = client.variable('v');
const x: number = ctx.getNumber(v, 0);
const big: bigint = ctx.getBigInt(v, 0n);
const s: string = ctx.getString(v, 'a');
const all: Record<string, Decision> = client.getVariables('checkout', { pax: 1 });
const off: () => void = client.on('update', (r) => r.changed.length);
client.on('error', (e: TurnoutError) => e.code === 'NETWORK' || e.status);
const batch = client.takeBatch();
if (batch !== null) {
  const events = decodeBatch(batch.bytes).events.length;
  client.ack(batch.seq);
  void events;
}
void client.start({ configUrl: 'https://example.invalid/c', intervalMs: 1000, eventsUrl: new URL('https://example.invalid/e') });
try {
  client.updateConfig(42 as unknown as string);
} catch (e) {
  if (e instanceof TurnoutError) console.log(e.code === 'LIMIT_EXCEEDED' || e.code, e.problems.map((p) => p.field));
}
void [added, n, x, big, s, all, off];
ctx.free();
client.free();
