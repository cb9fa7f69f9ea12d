#!/usr/bin/env node
// A small turnout program for Node.js: load a config, decide for a passenger,
// record a metric, and upload the recorded events to a collector.
//
//   npm install                        # links the package built by `cargo xtask wasm build`
//   node main.mjs --collector http://127.0.0.1:8080/events [--config FILE] [--pax ID] [--city ID]
//
// The collector receives one POST per batch (application/octet-stream, the
// binary batch format of docs/wire-format.md); a 2xx acknowledges the batch,
// anything else puts it back in the queue for the next attempt.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Client } from 'turnout';

const { values: args } = parseArgs({
  options: {
    collector: { type: 'string' },
    config: { type: 'string', default: fileURLToPath(new URL('../configs/example.json', import.meta.url)) },
    pax: { type: 'string', default: '7' },
    city: { type: 'string', default: '10' },
  },
});
if (!args.collector) {
  console.error('usage: node main.mjs --collector URL [--config FILE] [--pax ID] [--city ID]');
  process.exit(2);
}

// The bootstrap config: the first decision never waits for the network.
const client = new Client({ config: readFileSync(args.config), service: 'example' });

// Passenger ids are 64-bit: BigInt keeps ids above 2^53 exact.
const passenger = { pax: BigInt(args.pax), city: Number(args.city), country: 'SG' };

// One-shot decision, with the explanation of which rule or experiment matched.
const { decision, steps } = client.explain('automatedMessageDelay', passenger);
const delay = client.getVariable('automatedMessageDelay', passenger).number(30);
console.log(`automatedMessageDelay for pax ${passenger.pax} in city ${passenger.city}: ${delay} s (${decision.source}, ${decision.reason})`);
for (const s of steps) console.log(`  - ${s}`);

// The prepared path: build the context and the handle once, decide many times.
const ctx = client.context(passenger);
const color = client.variable('checkoutButtonColor');
console.log(`checkoutButtonColor: ${ctx.getString(color, 'blue')}`);

// A metric, recorded with the passenger's facets.
client.track('pickupSeconds', 42, { ...passenger, booking: 'ADR-123-2-001' });

// Upload everything that was recorded: ack on 2xx, nack otherwise.
let sent = 0;
for (let batch = client.takeBatch(); batch !== null; batch = client.takeBatch()) {
  let res;
  try {
    res = await fetch(args.collector, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: batch.bytes,
    });
  } catch (e) {
    client.nack(batch.seq);
    console.error(`upload failed: ${e.message}`);
    process.exitCode = 1;
    break;
  }
  if (res.ok) {
    client.ack(batch.seq);
    sent += batch.events;
    console.log(`batch ${batch.seq}: ${batch.events} events, ${batch.bytes.length} bytes -> HTTP ${res.status}`);
  } else {
    client.nack(batch.seq);
    console.error(`batch ${batch.seq}: HTTP ${res.status}, kept for retry`);
    process.exitCode = 1;
    break;
  }
}
console.log(`uploaded ${sent} events; queue: ${JSON.stringify(client.trackingStats())}`);
client.free();
