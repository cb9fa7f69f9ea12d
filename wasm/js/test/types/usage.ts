// Compiled by types.test.mjs with `tsc --noEmit --strict` against the built
// package: the declarations in index.d.ts must describe this usage.
import { Client, Context, Decision, Sync, TurnoutError, Variable, decodeBatch, type SyncNotice, type UpdateReport } from 'turnout';

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
void client.start({ configUrl: 'https://example.invalid/c', jitter: 0.2, staleAfterPolls: 3, logLevel: 'warn', logger: console });
void client.start({ eventsUrl: 'https://example.invalid/e', logger: null });
const isReady: Promise<boolean> = client.ready(2000);
client.pollNow();
client.on('notice', (n: SyncNotice) => (n.notice === 'error' ? n.kind === 'INCOMPLETE' && !n.repeat : n.notice === 'stale' && n.sinceMs));
client.on('error', (e) => e.channel === 'events' && e.repeat);
const sync = new Sync(client, { configUrl: 'https://example.invalid/c', pollIntervalMs: 1000, seed: 7 });
const a = sync.next(0);
if (a.action === 'fetch') sync.onFetch(5, { status: 200, etag: '"1"', body: '{}' });
else if (a.action === 'upload') sync.onUpload(5, a.seq, { failure: 'TIMEOUT', message: 'slow' });
else if (a.action === 'wait') void a.ms;
const notices: SyncNotice[] = sync.takeNotices();
const failures: number = sync.state().configFailures;
sync.free();
void [isReady, notices, failures];
try {
  client.updateConfig(42 as unknown as string);
} catch (e) {
  if (e instanceof TurnoutError) console.log(e.code === 'LIMIT_EXCEEDED' || e.code, e.problems.map((p) => p.field));
}
void [added, n, x, big, s, all, off];
ctx.free();
client.free();
