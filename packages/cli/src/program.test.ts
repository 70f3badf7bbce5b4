import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verify } from '@groq-webhooks/signature';
import { freePort } from '@groq-webhooks/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { capture } from './__fixtures__/capture.js';
import { run } from './program.js';

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
}

describe('groq-webhooks trigger against a real HTTP server', () => {
  let server: Server;
  let url: string;
  let received: Received[] = [];
  /** Answers 500 to event ids listed here. */
  const failIds = new Set<string>();
  const temp = mkdtempSync(join(tmpdir(), 'groq-cli-'));

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => {
        body += chunk;
      });
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        const id = (JSON.parse(body) as { id: string }).id;
        res.writeHead(failIds.has(id) ? 500 : 200, { 'content-type': 'application/json' });
        res.end(failIds.has(id) ? '{"error":"nope"}' : '{"received":true}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/groq`;
  });
  afterEach(() => {
    received = [];
    failIds.clear();
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    rmSync(temp, { recursive: true, force: true });
  });

  function verified(request: Received, secrets: string[]): boolean {
    const result = verify({
      secrets,
      signature: String(request.headers[SIGNATURE_HEADER]),
      timestamp: String(request.headers[TIMESTAMP_HEADER]),
      body: request.body,
      nowSeconds: Math.floor(Date.now() / 1000),
      toleranceSeconds: 300,
    });
    return result.ok;
  }

  it('signs an envelope like the sender and prints status and body', async () => {
    const c = capture({ GROQ_WEBHOOK_SECRET: 'first-secret,second-secret' });
    const code = await run(
      ['trigger', 'resource.updated', '--url', url, '--data', '{"id":"res_1"}', '--id', 'evt_1'],
      c.io,
    );
    expect(code).toBe(0);
    expect(received).toHaveLength(1);
    const request = received[0] as Received;
    // Signed with the first configured secret only.
    expect(verified(request, ['first-secret'])).toBe(true);
    expect(verified(request, ['second-secret'])).toBe(false);
    expect(request.headers['content-type']).toBe('application/json');
    const envelope = JSON.parse(request.body) as Record<string, unknown>;
    expect(envelope).toMatchObject({
      id: 'evt_1',
      type: 'resource.updated',
      data: { id: 'res_1' },
    });
    expect(Date.parse(String(envelope.created))).toBeGreaterThan(Date.now() - 60_000);
    expect(c.out()).toBe('evt_1  200 {"received":true}\n');
    expect(c.err()).toBe('');
  });

  it('sends --count events with numbered ids and a summary; any non-2xx exits 1', async () => {
    failIds.add('batch-3');
    const c = capture({});
    const code = await run(
      ['trigger', 'x.y', '--url', url, '--secret', 's3cret', '--id', 'batch', '--count', '5'],
      c.io,
    );
    expect(code).toBe(1);
    const ids = received.map((r) => (JSON.parse(r.body) as { id: string }).id).sort();
    expect(ids).toEqual(['batch-1', 'batch-2', 'batch-3', 'batch-4', 'batch-5']);
    expect(received.every((r) => verified(r, ['s3cret']))).toBe(true);
    expect(c.out()).toContain('batch-3  500 {"error":"nope"}');
    expect(c.out()).toMatch(/sent 5, 2xx 4, 4xx 0, 5xx 1, errors 0, [0-9.]+ req\/s\n$/);
  });

  it('generates distinct evt_ ids by default', async () => {
    const c = capture({ GROQ_WEBHOOK_SECRET: 'k' });
    expect(await run(['trigger', 'resource.created', '--url', url, '--count', '3'], c.io)).toBe(0);
    const ids = received.map((r) => (JSON.parse(r.body) as { id: string }).id);
    expect(new Set(ids).size).toBe(3);
    for (const id of ids) expect(id).toMatch(/^evt_[0-9a-f]{24}$/);
  });

  it('falls back to the local development secret, found from the repo root', async () => {
    const root = join(temp, 'repo');
    mkdirSync(join(root, '.local'), { recursive: true });
    mkdirSync(join(root, 'apps', 'x'), { recursive: true });
    writeFileSync(join(root, 'pnpm-workspace.yaml'), 'packages: []\n');
    writeFileSync(join(root, '.local', 'dev-secret'), 'whsec_local_dev\n');
    const c = capture({}, join(root, 'apps', 'x'));
    expect(await run(['trigger', 'resource.created', '--url', url], c.io)).toBe(0);
    expect(verified(received[0] as Received, ['whsec_local_dev'])).toBe(true);
  });

  it('without any secret: one line, exit 2, nothing sent', async () => {
    const c = capture({}, temp);
    expect(await run(['trigger', 'resource.created', '--url', url], c.io)).toBe(2);
    expect(c.err()).toMatch(/^error: no signing secret: .*\n$/);
    expect(received).toHaveLength(0);
  });

  it('an unreachable ingest: one line on stderr, exit 1', async () => {
    const closed = `http://127.0.0.1:${await freePort()}/x`;
    const c = capture({ GROQ_WEBHOOK_SECRET: 'k' });
    const code = await run(['trigger', 'resource.created', '--url', closed], c.io);
    expect(code).toBe(1);
    expect(c.err().trim().split('\n')).toHaveLength(1);
    expect(c.err()).toContain(`could not reach ${closed}: ECONNREFUSED`);
    expect(c.out()).toBe('');
  });

  it('the default URL uses PORT', async () => {
    const port = new URL(url).port;
    const c = capture({ GROQ_WEBHOOK_SECRET: 'k', PORT: port });
    expect(await run(['trigger', 'resource.created'], c.io)).toBe(0);
    expect(received).toHaveLength(1);
  });
});

describe('groq-webhooks usage and configuration errors', () => {
  const cases: [string, string[], Record<string, string>, RegExp][] = [
    ['invalid JSON', ['trigger', 't', '--data', '{nope'], {}, /--data.*is not valid JSON/],
    ['non-object JSON', ['trigger', 't', '--data', '[1]'], {}, /must be a JSON object/],
    ['bad --count', ['trigger', 't', '--count', 'ten'], {}, /--count.*whole number/],
    ['unknown command', ['frobnicate'], {}, /unknown command 'frobnicate'/],
    ['unknown option', ['failed', 'list', '--nope'], {}, /unknown option '--nope'/],
    ['missing event id', ['failed', 'retry'], {}, /missing event id/],
    ['id and --all', ['failed', 'remove', 'evt_1', '--all'], {}, /not both/],
    ['bad config', ['stats'], { QUEUE_SHARDS: '0' }, /QUEUE_SHARDS/],
  ];
  for (const [name, argv, env, message] of cases) {
    it(`${name}: one line on stderr, exit 2`, async () => {
      const c = capture(env);
      expect(await run(argv, c.io)).toBe(2);
      expect(c.err()).toMatch(message);
      expect(c.err().trim().split('\n')).toHaveLength(1);
      expect(c.err()).not.toMatch(/\n\s+at /);
    });
  }

  it('--help works on every command and exits 0', async () => {
    for (const argv of [
      [],
      ['trigger'],
      ['failed'],
      ['failed', 'list'],
      ['failed', 'show'],
      ['failed', 'retry'],
      ['failed', 'remove'],
      ['stats'],
    ]) {
      const c = capture();
      expect(await run([...argv, '--help'], c.io)).toBe(0);
      expect(c.out()).toMatch(/^Usage: groq-webhooks/);
    }
  });

  it('Redis unreachable: one line naming where, exit 1, within the connect timeout', async () => {
    const c = capture({ REDIS_URL: 'redis://user:hunter2@127.0.0.1:1' });
    const started = Date.now();
    expect(await run(['failed', 'list'], c.io)).toBe(1);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(c.err()).toBe(
      'error: Redis unreachable at 127.0.0.1:1 (REDIS_URL): no connection within 3 s (connect ECONNREFUSED 127.0.0.1:1)\n',
    );
    expect(c.err()).not.toContain('hunter2');
  });
});
