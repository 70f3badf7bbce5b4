// Micro-benchmark of the ingest's nesting-depth scan (MAX_JSON_DEPTH), the one step it added to
// every request: its cost per request on a 1 KB and a 1 MB envelope, beside JSON.parse and the
// HMAC check of the same body, which every request already pays.
//
//   node bench/dist/json-depth.js
import { DEFAULT_MAX_JSON_DEPTH, jsonNestedDeeperThan } from '@groq-webhooks/core';
import { computeSignature } from '@groq-webhooks/signature';

/** An envelope of about `bytes` bytes with the shapes real payloads have. */
function envelope(bytes: number): Buffer {
  const attributes: Record<string, unknown> = {};
  const event = { id: 'evt_1', type: 'resource.updated', data: { id: 'res_1', attributes } };
  for (let i = 0; JSON.stringify(event).length < bytes - 40; i++) {
    attributes[`field_${i}`] =
      i % 3 === 0
        ? { nested: [i, { note: 'a "quoted" \\ value' }] }
        : `text value ${i} of the resource`;
  }
  return Buffer.from(JSON.stringify({ ...event, created: '2026-11-29T10:00:00Z' }));
}

/** Mean microseconds per call over `rounds` calls, after warming up. */
function time(rounds: number, run: () => unknown): number {
  for (let i = 0; i < Math.min(rounds, 2000); i++) run();
  const started = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) run();
  return Number(process.hrtime.bigint() - started) / rounds / 1000;
}

console.log('| body | depth scan | JSON.parse | HMAC-SHA256 | scan / parse |');
console.log('|---|---|---|---|---|');
for (const [label, bytes, rounds] of [
  ['1 KB', 1024, 200_000],
  ['1 MB', 1024 * 1024, 300],
] as const) {
  const body = envelope(bytes);
  const text = body.toString('utf8');
  if (jsonNestedDeeperThan(body, DEFAULT_MAX_JSON_DEPTH)) throw new Error('unexpectedly deep');
  const scan = time(rounds, () => jsonNestedDeeperThan(body, DEFAULT_MAX_JSON_DEPTH));
  const parse = time(rounds, () => JSON.parse(text));
  const hmac = time(rounds, () => computeSignature('whsec_benchmark_secret', '1764410400', body));
  console.log(
    `| ${label} (${body.byteLength} B) | ${scan.toFixed(2)} µs | ${parse.toFixed(2)} µs | ${hmac.toFixed(2)} µs | ${(scan / parse).toFixed(2)} |`,
  );
}
