// The outside attack run's slow-body attack, against a real ingest process: 300 connections
// that send valid headers declaring 1,000,000 bytes, 999,000 of them, then one byte a second.
// Each must be cut off within REQUEST_TIMEOUT_MS + 5 s, the process must stay under 300 MiB,
// and a sender delivering 500 signed events meanwhile must get every one of them in.
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { sign } from '@groq-webhooks/signature';
import {
  freePort,
  type RunningProcess,
  startProcess,
  startRedis,
  type TestRedis,
  testEnvelope,
  waitFor,
} from '@groq-webhooks/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENTRY } from './support/paths.js';

const SECRET = 'whsec_slow_clients_e2e_secret_0123456789';
/** Short, so the test runs in seconds; the production default is 30 s. */
const REQUEST_TIMEOUT_MS = 3000;
const HEADERS_TIMEOUT_MS = 2000;
const SLOW_CONNECTIONS = 300;
const DECLARED = 1_000_000;
const SENT_AT_ONCE = 999_000;
const DELIVERIES = 500;
const RSS_LIMIT_MIB = 300;

interface SlowConnection {
  openedAt: number;
  closedAt: number | undefined;
  /** The status line the server answered with, if any. */
  reply: string;
}

interface Attempt {
  status: number;
  retryAfter: string | null;
  code: string | undefined;
}

/** Resident memory of a process, MiB (Linux). */
function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return Number(/([0-9]+)/.exec(line ?? '')?.[1] ?? 0) / 1024;
}

describe('slow-body attack against a real ingest', () => {
  let redis: TestRedis;
  let ingest: RunningProcess;
  let port: number;

  beforeAll(async () => {
    redis = await startRedis();
    port = await freePort();
    ingest = startProcess('node', [ENTRY.ingest], {
      env: {
        GROQ_WEBHOOK_SECRET: SECRET,
        REDIS_URL: redis.url,
        PORT: String(port),
        HOST: '127.0.0.1',
        REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
        HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
        LOG_LEVEL: 'info',
      },
    });
    await ingest.waitForOutput('ingest listening', 20_000);
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200);
  }, 60_000);

  afterAll(async () => {
    await ingest?.stop();
    await redis?.cleanup();
  }, 30_000);

  /** Opens one slow upload: headers, 999,000 bytes at once, then a byte a second. */
  function slowUpload(bulk: Buffer, headers: string): Promise<SlowConnection> {
    return new Promise((resolve) => {
      const connection: SlowConnection = { openedAt: Date.now(), closedAt: undefined, reply: '' };
      let trickle: NodeJS.Timeout | undefined;
      const socket: Socket = connect(port, '127.0.0.1', () => {
        connection.openedAt = Date.now();
        socket.write(headers);
        socket.write(bulk);
        trickle = setInterval(() => socket.write('x'), 1000);
      });
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => {
        if (connection.reply === '') connection.reply = chunk.split('\r\n', 1)[0] ?? '';
      });
      // Resets and broken pipes are how the server cutting the connection looks from here.
      socket.on('error', () => {});
      socket.once('close', () => {
        clearInterval(trickle);
        connection.closedAt = Date.now();
        resolve(connection);
      });
    });
  }

  /** Delivers one event until it gets a 200, recording every answer. */
  async function deliver(body: string, attempts: Attempt[]): Promise<void> {
    for (;;) {
      let attempt: Attempt;
      try {
        const response = await fetch(`http://127.0.0.1:${port}/webhooks/groq`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...sign({ secret: SECRET, body }) },
          body,
          signal: AbortSignal.timeout(10_000),
        });
        const json = (await response.json()) as { code?: string };
        attempt = {
          status: response.status,
          retryAfter: response.headers.get('retry-after'),
          code: json.code,
        };
      } catch {
        attempt = { status: 0, retryAfter: null, code: undefined };
      }
      attempts.push(attempt);
      if (attempt.status === 200 || attempts.length > 20 * DELIVERIES) return;
      // The simulated sender's backoff (it would honour Retry-After; shortened here).
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  it('cuts every slow upload off within REQUEST_TIMEOUT_MS + 5 s, stays under 300 MiB and lets 500 deliveries in', async () => {
    const pid = ingest.pid;
    // Warm up: the figures below are about the attack, not about first requests.
    const warmAttempts: Attempt[] = [];
    for (let i = 0; i < 50; i++) {
      await deliver(JSON.stringify(testEnvelope({ id: `evt_warm_${i}` })), warmAttempts);
    }
    const before = rssMiB(pid);
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssMiB(pid));
    }, 50);

    const intended = Buffer.alloc(DECLARED, 0x20);
    const signed = sign({ secret: SECRET, body: intended });
    const headers =
      'POST /webhooks/groq HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
      `Content-Length: ${DECLARED}\r\nx-groq-signature: ${signed['x-groq-signature']}\r\n` +
      `x-groq-timestamp: ${signed['x-groq-timestamp']}\r\n\r\n`;
    const bulk = intended.subarray(0, SENT_AT_ONCE);
    const started = Date.now();
    const slow = Array.from({ length: SLOW_CONNECTIONS }, () => slowUpload(bulk, headers));

    // Meanwhile, another client delivers 500 signed events, 10 at a time, retrying non-200s.
    const attempts: Attempt[] = [];
    const events = Array.from({ length: DELIVERIES }, (_, i) =>
      testEnvelope({ id: `evt_legit_${i}` }),
    );
    let next = 0;
    const lane = async () => {
      for (let event = events[next++]; event !== undefined; event = events[next++]) {
        await deliver(JSON.stringify(event), attempts);
      }
    };
    const delivered = Promise.all(Array.from({ length: 10 }, lane));

    const connections = await Promise.all(slow);
    const attackSeconds = (Date.now() - started) / 1000;
    await delivered;
    const deliveredSeconds = (Date.now() - started) / 1000;
    clearInterval(sampler);
    const after = rssMiB(pid);

    const lifetimes = connections.map((c) => (c.closedAt ?? Number.POSITIVE_INFINITY) - c.openedAt);
    const replies = new Map<string, number>();
    for (const c of connections) replies.set(c.reply, (replies.get(c.reply) ?? 0) + 1);
    const statuses = new Map<string, number>();
    for (const a of attempts) {
      const key = `${a.status}${a.code ? ` ${a.code}` : ''}`;
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
    }
    const sorted = [...lifetimes].sort((a, b) => a - b);
    const quantile = (q: number) =>
      sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
    console.log(
      `[slow-clients] connections=${SLOW_CONNECTIONS} requestTimeoutMs=${REQUEST_TIMEOUT_MS} ` +
        `closed_ms min=${sorted[0]} p50=${quantile(0.5)} p90=${quantile(0.9)} max=${sorted.at(-1)} ` +
        `replies=${JSON.stringify(Object.fromEntries(replies))} ` +
        `rss_mib before=${before.toFixed(0)} peak=${peak.toFixed(0)} after=${after.toFixed(0)} ` +
        `deliveries=${DELIVERIES} attempts=${attempts.length} answers=${JSON.stringify(Object.fromEntries(statuses))} ` +
        `attack_s=${attackSeconds.toFixed(1)} delivered_s=${deliveredSeconds.toFixed(1)}`,
    );

    for (const lifetime of lifetimes)
      expect(lifetime).toBeLessThanOrEqual(REQUEST_TIMEOUT_MS + 5000);
    // Slow uploads are answered 503 overloaded at once, or 408 at the timeout. A client still
    // writing when its refused connection closes may see a reset before it reads the answer ('').
    for (const reply of replies.keys()) {
      expect(reply).toMatch(/^(HTTP\/1\.1 (503 Service Unavailable|408 Request Timeout))?$/);
    }
    expect(replies.get('HTTP/1.1 408 Request Timeout')).toBeGreaterThan(0);
    expect(peak).toBeLessThan(RSS_LIMIT_MIB);
    // Every delivery attempt was answered: 200, or 503 with Retry-After; and every event got in.
    for (const attempt of attempts) {
      if (attempt.status === 200) continue;
      expect(attempt.status).toBe(503);
      expect(attempt.retryAfter).toMatch(/^[1-9][0-9]*$/);
    }
    expect(attempts.filter((a) => a.status === 200)).toHaveLength(DELIVERIES);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const timedOut = Number(
      /groq_webhook_client_errors_total\{kind="request_timeout"[^}]*\} ([0-9]+)/.exec(metrics)?.[1],
    );
    expect(timedOut).toBe(replies.get('HTTP/1.1 408 Request Timeout') ?? 0);
  }, 120_000);
});
