import { Writable } from 'node:stream';
import {
  chooseQueuePath,
  closeRedis,
  createRedis,
  EventProducer,
  type EventQueue,
  IdempotencyStore,
  idempotencyKey,
  jobIdFor,
  openQueue,
  type QueuePath,
  type RedisClient,
  UnrecoverableError,
  Worker,
} from '@groq-webhooks/queue';
import { computeSignature } from '@groq-webhooks/signature';
import { createLogger } from '@groq-webhooks/telemetry';
import { startRedis, type TestRedis, testQueuePath, waitFor } from '@groq-webhooks/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createApp, RETRY_AFTER_SECONDS } from './app.js';
import { BodyBudget } from './body-budget.js';
import { createIngestMetrics } from './metrics.js';
import type { Producer } from './types.js';

const SECRET = 'whsec_CurrentReceiverSecret0123456789';
const OLD_SECRET = 'whsec_PreviousReceiverSecret987654';
const SECRETS = [SECRET, OLD_SECRET] as const;
const MAX_BODY = 4096;
const TOLERANCE = 300;
/** The app's clock: fixed, so timestamps at the window's edge are exact. */
const NOW_SECONDS = 1_795_000_000;
const NOW_MS = NOW_SECONDS * 1000 + 250;
/** The queue path of this run (vitest projects `fast` and `stock`). */
let path: QueuePath;
beforeAll(async () => {
  ({ path } = await chooseQueuePath(testQueuePath(), { isCluster: false }));
});

const settings = {
  queueName: 'groq-events',
  queuePrefix: '{groq}',
  queueShards: 1,
  jobAttempts: 8,
  backoffBaseMs: 1000,
};
const SHARD = { index: 0, name: settings.queueName, prefix: settings.queuePrefix };

type Body = string | Uint8Array | ReadableStream<Uint8Array> | undefined;

interface Sent {
  status: number;
  text: string;
  headers: Headers;
  json(): unknown;
}

let counter = 0;
function eventId(): string {
  counter += 1;
  return `evt_${Date.now().toString(36)}_${counter}`;
}

function envelope(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: eventId(),
    type: 'resource.created',
    data: { resource: { id: 'res_1', name: 'model' } },
    created: '2026-11-28T10:00:00Z',
    ...overrides,
  };
}

function signedHeaders(
  body: string | Uint8Array,
  options: { secret?: string; timestamp?: number | string } = {},
): Record<string, string> {
  const timestamp = String(options.timestamp ?? NOW_SECONDS);
  return {
    'x-groq-signature': computeSignature(options.secret ?? SECRET, timestamp, body),
    'x-groq-timestamp': timestamp,
  };
}

/** Captures the app's pino lines. */
function logCapture(): { lines: Record<string, unknown>[]; raw: string[]; destination: Writable } {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) {
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  return { lines, raw, destination };
}

function streamOf(chunks: readonly Uint8Array[]): ReadableStream<Uint8Array> {
  let index = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const chunk = chunks[index++];
      if (chunk === undefined) controller.close();
      else controller.enqueue(chunk);
    },
  });
}

describe('POST /webhooks/groq against a real redis-server', () => {
  let redis: TestRedis;
  let client: RedisClient;
  let producer: EventProducer;
  let queue: EventQueue;
  let logs: ReturnType<typeof logCapture>;
  let app: ReturnType<typeof createApp>;
  let metrics: ReturnType<typeof createIngestMetrics>;
  const responses: { sent: Sent; signatures: string[] }[] = [];
  const cleanups: (() => Promise<unknown>)[] = [];

  function build(
    overrides: {
      producer?: Producer;
      isReady?: () => Promise<boolean>;
      maxBodyBytes?: number;
      bodyBudget?: BodyBudget;
      metricsRoute?: boolean;
    } = {},
  ) {
    const capture = logCapture();
    const builtMetrics = createIngestMetrics();
    const built = createApp({
      producer: overrides.producer ?? producer,
      secrets: SECRETS,
      toleranceSeconds: TOLERANCE,
      maxBodyBytes: overrides.maxBodyBytes ?? MAX_BODY,
      enqueueTimeoutMs: 500,
      logger: createLogger({ service: 'ingest', level: 'debug', destination: capture.destination }),
      metrics: builtMetrics,
      isReady: overrides.isReady ?? (async () => client.status === 'ready'),
      now: () => NOW_MS,
      ...(overrides.bodyBudget === undefined ? {} : { bodyBudget: overrides.bodyBudget }),
      ...(overrides.metricsRoute === undefined ? {} : { metricsRoute: overrides.metricsRoute }),
    });
    return { app: built, logs: capture, metrics: builtMetrics };
  }

  /** Sends a request in-process and records it for the no-500/no-leak checks. */
  async function send(
    body: Body,
    headers: Record<string, string> = {},
    options: { method?: string; path?: string; target?: ReturnType<typeof createApp> } = {},
  ): Promise<Sent> {
    const init: RequestInit & { duplex?: 'half' } = { method: options.method ?? 'POST', headers };
    if (body !== undefined) init.body = body;
    if (body instanceof ReadableStream) init.duplex = 'half';
    const response = await (options.target ?? app).request(options.path ?? '/webhooks/groq', init);
    const text = await response.text();
    const sent: Sent = {
      status: response.status,
      text,
      headers: response.headers,
      json: () => JSON.parse(text),
    };
    // Every signature the app could have computed for this request: none may be echoed.
    const timestamp = headers['x-groq-timestamp'];
    const signatures =
      timestamp !== undefined && (typeof body === 'string' || body instanceof Uint8Array)
        ? SECRETS.map((secret) => computeSignature(secret, timestamp, body))
        : [];
    responses.push({ sent, signatures });
    return sent;
  }

  async function post(event: Record<string, unknown>, options: { secret?: string } = {}) {
    const body = JSON.stringify(event);
    return send(body, signedHeaders(body, options));
  }

  /** Every key in Redis, to prove a rejected request wrote nothing. */
  async function keys(): Promise<string[]> {
    return (await client.keys('*')).sort();
  }

  async function expectRejected(
    body: Body,
    headers: Record<string, string>,
    status: number,
    expected: { error: string; code: string },
  ): Promise<Sent> {
    const before = await keys();
    const sent = await send(body, headers);
    expect(sent.status).toBe(status);
    expect(sent.json()).toEqual(expected);
    expect(sent.headers.get('content-type')).toBe('application/json');
    expect(await keys()).toEqual(before);
    return sent;
  }

  const INVALID_SIGNATURE = { error: 'Invalid signature', code: 'invalid_signature' };
  const INVALID_TIMESTAMP = { error: 'Invalid timestamp', code: 'invalid_timestamp' };
  const OUT_OF_TOLERANCE = {
    error: 'Timestamp outside tolerance',
    code: 'timestamp_out_of_tolerance',
  };
  const TOO_LARGE = { error: 'Payload too large', code: 'payload_too_large' };
  const invalidPayload = (problem: string) => ({
    error: `Invalid payload: ${problem}`,
    code: 'invalid_payload',
  });

  function lastLog(): Record<string, unknown> {
    const line = logs.lines.filter((l) => l.msg !== 'webhook request started').at(-1);
    if (line === undefined) throw new Error('no log line');
    return line;
  }

  beforeAll(async () => {
    redis = await startRedis();
    client = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'producer');
    producer = new EventProducer({ client, settings, path });
    await waitFor(() => client.status === 'ready');
    queue = openQueue(client, SHARD, settings);
    ({ app, logs, metrics } = build());
    // Let BullMQ create its queue meta keys now, so later key snapshots see only our writes.
    expect((await post(envelope())).status).toBe(200);
  });

  afterEach(() => {
    for (const { sent, signatures } of responses.splice(0)) {
      expect(sent.status).not.toBe(500);
      expect(sent.text).not.toContain(SECRET);
      expect(sent.text).not.toContain(OLD_SECRET);
      for (const signature of signatures) expect(sent.text).not.toContain(signature);
    }
    for (const line of logs.raw) {
      expect(line).not.toContain(SECRET);
      expect(line).not.toContain(OLD_SECRET);
    }
  });

  afterAll(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await queue?.close();
    await producer?.close();
    if (client) await closeRedis(client);
    await redis?.cleanup();
  });

  describe('200', () => {
    it('enqueues a verified event: job named by type, id from jobIdFor, data with keyIndex', async () => {
      const event = envelope({ type: 'resource.updated', extra: { kept: true } });
      const sent = await post(event);
      expect(sent.status).toBe(200);
      expect(sent.json()).toEqual({ received: true });
      expect(sent.headers.get('content-type')).toBe('application/json');
      const job = await queue.getJob(jobIdFor(String(event.id)));
      expect(job?.name).toBe('resource.updated');
      expect(job?.id).toBe(jobIdFor(String(event.id)));
      expect(job?.data).toEqual({
        event,
        receivedAt: new Date(NOW_MS).toISOString(),
        keyIndex: 0,
      });
      expect(job?.opts.attempts).toBe(8);
      expect(await job?.getState()).toBe('waiting');
      expect(lastLog()).toMatchObject({
        level: 'info',
        code: 'received',
        status: 200,
        eventId: event.id,
        type: 'resource.updated',
        keyIndex: 0,
      });
      expect(typeof lastLog().durationMs).toBe('number');
    });

    it('accepts the second (rotated) secret and records keyIndex 1', async () => {
      const event = envelope();
      const sent = await post(event, { secret: OLD_SECRET });
      expect(sent.status).toBe(200);
      const job = await queue.getJob(jobIdFor(String(event.id)));
      expect(job?.data.keyIndex).toBe(1);
      expect(lastLog()).toMatchObject({ code: 'received', keyIndex: 1 });
    });

    it('accepts a v1= prefix and several signatures of which one matches', async () => {
      const first = JSON.stringify(envelope());
      const good = signedHeaders(first);
      expect(
        (await send(first, { ...good, 'x-groq-signature': `v1=${good['x-groq-signature']}` }))
          .status,
      ).toBe(200);
      const second = JSON.stringify(envelope());
      const headers = signedHeaders(second);
      const wrong = computeSignature('whsec_other', headers['x-groq-timestamp'] ?? '', second);
      // Duplicated headers arrive joined with ", ".
      const joined = `${wrong}, v1=${headers['x-groq-signature']}`;
      expect((await send(second, { ...headers, 'x-groq-signature': joined })).status).toBe(200);
    });

    it('accepts timestamps exactly 300 s old and 300 s ahead', async () => {
      for (const timestamp of [NOW_SECONDS - 300, NOW_SECONDS + 300]) {
        const body = JSON.stringify(envelope());
        const sent = await send(body, signedHeaders(body, { timestamp }));
        expect(sent.status).toBe(200);
      }
    });

    it('accepts an unknown event type and an id of exactly 255 characters', async () => {
      expect((await post(envelope({ type: 'model.retired' }))).status).toBe(200);
      const id = `evt_${'x'.repeat(251)}`;
      expect((await post(envelope({ id }))).status).toBe(200);
      expect(await queue.getJob(jobIdFor(id))).toBeDefined();
    });

    it('maps ids with ":" and "%" to distinct job ids', async () => {
      const a = envelope({ id: 'evt:a%3A' });
      const b = envelope({ id: 'evt%3Aa:' });
      expect((await post(a)).json()).toEqual({ received: true });
      expect((await post(b)).json()).toEqual({ received: true });
      expect((await queue.getJob(jobIdFor('evt:a%3A')))?.data.event.id).toBe('evt:a%3A');
      expect((await queue.getJob(jobIdFor('evt%3Aa:')))?.data.event.id).toBe('evt%3Aa:');
    });

    it('accepts a body of exactly the limit, also streamed without Content-Length', async () => {
      const base = JSON.stringify(envelope({ data: { pad: '' } }));
      const body = JSON.stringify(
        JSON.parse(base.replace('"pad":""', `"pad":"${'p'.repeat(MAX_BODY - base.length)}"`)),
      );
      expect(Buffer.byteLength(body)).toBe(MAX_BODY);
      expect((await send(body, signedHeaders(body))).status).toBe(200);
      const streamed = body.replace(/"id":"[^"]+"/, `"id":"${eventId().slice(0, 10)}"`);
      const padded = streamed.replace(
        '"pad":"',
        `"pad":"${'q'.repeat(MAX_BODY - streamed.length)}`,
      );
      expect(Buffer.byteLength(padded)).toBe(MAX_BODY);
      const bytes = Buffer.from(padded);
      const chunks = [bytes.subarray(0, 1000), bytes.subarray(1000, 3000), bytes.subarray(3000)];
      expect((await send(streamOf(chunks), signedHeaders(bytes))).status).toBe(200);
    });
  });

  describe('duplicates and redeliveries', () => {
    it('answers duplicate for an id already queued and adds no job', async () => {
      const event = envelope();
      expect((await post(event)).json()).toEqual({ received: true });
      const counts = await queue.getJobCounts();
      const before = await keys();
      const again = await post(event);
      expect(again.status).toBe(200);
      expect(again.json()).toEqual({ received: true, duplicate: true });
      expect(await queue.getJobCounts()).toEqual(counts);
      expect(await keys()).toEqual(before);
      expect(lastLog()).toMatchObject({ code: 'duplicate', eventId: event.id, keyIndex: 0 });
    });

    it('answers duplicate for an event the worker marked done, enqueuing nothing', async () => {
      const event = envelope();
      await new IdempotencyStore(client).markDone(String(event.id), 60);
      const sent = await post(event);
      expect(sent.json()).toEqual({ received: true, duplicate: true });
      expect(await queue.getJob(jobIdFor(String(event.id)))).toBeUndefined();
    });

    it('puts a permanently failed job back with a fresh attempt budget and answers received', async () => {
      // Its own queue, so the failing worker touches no other test's jobs.
      const isolated = { ...settings, queueName: 'requeue-test' };
      const ownProducer = new EventProducer({ client, settings: isolated, path });
      cleanups.push(() => ownProducer.close());
      const ownQueue = openQueue(client, { ...SHARD, name: 'requeue-test' }, isolated);
      cleanups.push(() => ownQueue.close());
      const own = build({ producer: ownProducer });
      const event = envelope();
      const body = JSON.stringify(event);
      const first = await send(body, signedHeaders(body), { target: own.app });
      expect(first.json()).toEqual({ received: true });

      const connection = createRedis(
        { redisUrl: redis.url, redisClusterNodes: undefined },
        'worker',
      );
      cleanups.push(() => closeRedis(connection));
      const worker = new Worker(
        'requeue-test',
        async () => {
          throw new UnrecoverableError('handler gave up');
        },
        { connection, prefix: settings.queuePrefix },
      );
      const jobId = jobIdFor(String(event.id));
      await waitFor(async () => (await ownQueue.getJob(jobId))?.finishedOn !== undefined);
      await worker.close();
      expect(await (await ownQueue.getJob(jobId))?.getState()).toBe('failed');

      const again = await send(body, signedHeaders(body), { target: own.app });
      expect(again.status).toBe(200);
      expect(again.json()).toEqual({ received: true });
      const requeued = await ownQueue.getJob(jobId);
      expect(await requeued?.getState()).toBe('waiting');
      expect(requeued?.attemptsMade).toBe(0);
      expect(own.logs.lines.at(-1)).toMatchObject({ code: 'requeued', status: 200 });
    });
  });

  describe('401 invalid signature', () => {
    const body = JSON.stringify(envelope());
    const good = signedHeaders(body);
    const timestamp = good['x-groq-timestamp'] ?? '';
    const goodSignature = good['x-groq-signature'] ?? '';
    const cases: [string, Record<string, string>][] = [
      ['missing', { 'x-groq-timestamp': timestamp }],
      ['empty', { 'x-groq-timestamp': timestamp, 'x-groq-signature': '' }],
      ['blank', { 'x-groq-timestamp': timestamp, 'x-groq-signature': '   ' }],
      ['wrong secret', signedHeaders(body, { secret: 'whsec_attacker' })],
      ['non-hex', { ...good, 'x-groq-signature': 'z'.repeat(64) }],
      ['63 hex chars', { ...good, 'x-groq-signature': goodSignature.slice(1) }],
      ['65 hex chars', { ...good, 'x-groq-signature': `${goodSignature}0` }],
      ['128 hex chars', { ...good, 'x-groq-signature': goodSignature.repeat(2) }],
      ['uppercase hex', { ...good, 'x-groq-signature': goodSignature.toUpperCase() }],
      ['v2= prefix', { ...good, 'x-groq-signature': `v2=${goodSignature}` }],
      ['multi-byte characters', { ...good, 'x-groq-signature': 'é'.repeat(64) }],
      // UTF-8 bytes of "é" as Node hands them over (latin1), 64 characters long.
      ['multi-byte bytes', { ...good, 'x-groq-signature': 'Ã©'.repeat(32) }],
      [
        'duplicated, both wrong',
        { ...good, 'x-groq-signature': `${'a'.repeat(64)}, ${'b'.repeat(64)}` },
      ],
      ['huge header', { ...good, 'x-groq-signature': `${'a'.repeat(64)},`.repeat(4000) }],
      ['signature of another timestamp', { ...good, 'x-groq-timestamp': String(NOW_SECONDS - 1) }],
    ];
    for (const [name, headers] of cases) {
      it(`rejects a ${name} signature`, async () => {
        await expectRejected(body, headers, 401, INVALID_SIGNATURE);
        const line = lastLog();
        expect(line).toMatchObject({ level: 'warn', code: 'invalid_signature', status: 401 });
        expect(['missing_signature', 'invalid_signature']).toContain(line.reason);
        expect(line.keyIndex).toBeUndefined();
      });
    }

    it('logs which check failed', async () => {
      await send(body, { 'x-groq-timestamp': timestamp });
      expect(lastLog().reason).toBe('missing_signature');
      await send(body, { ...good, 'x-groq-signature': 'f'.repeat(64) });
      expect(lastLog().reason).toBe('invalid_signature');
    });

    it('rejects a body changed after signing, and verifies before parsing', async () => {
      await expectRejected(`${body} `, good, 401, INVALID_SIGNATURE);
      // Not JSON and not signed: the answer is about the signature, never the payload.
      await expectRejected('not json', good, 401, INVALID_SIGNATURE);
    });
  });

  describe('401 timestamp', () => {
    const body = JSON.stringify(envelope());
    const cases: [string, string | undefined][] = [
      ['missing', undefined],
      ['empty', ''],
      ['letters', 'abc'],
      ['decimal', `${NOW_SECONDS}.5`],
      ['negative', `-${NOW_SECONDS}`],
      ['plus sign', `+${NOW_SECONDS}`],
      ['inner space', `${NOW_SECONDS} 1`],
      ['exponent', '1.795e9'],
      ['hex', '0x6afc7f80'],
      ['milliseconds (13 digits)', String(NOW_MS)],
      ['duplicated', `${NOW_SECONDS}, ${NOW_SECONDS}`],
      // Arabic-Indic digits, as their UTF-8 bytes arrive through Node (latin1).
      ['multi-byte digits', Buffer.from('١٧٩٥٠٠٠٠٠٠').toString('latin1')],
    ];
    for (const [name, timestamp] of cases) {
      it(`rejects a ${name} timestamp as invalid_timestamp`, async () => {
        const headers: Record<string, string> = {
          'x-groq-signature': computeSignature(SECRET, timestamp ?? '', body),
        };
        if (timestamp !== undefined) headers['x-groq-timestamp'] = timestamp;
        await expectRejected(body, headers, 401, INVALID_TIMESTAMP);
        expect(lastLog()).toMatchObject({ code: 'invalid_timestamp', status: 401 });
        expect(['missing_timestamp', 'invalid_timestamp']).toContain(lastLog().reason);
      });
    }

    it('rejects 301 s old and 301 s ahead, logging the measured skew', async () => {
      for (const [timestamp, skew] of [
        [NOW_SECONDS - 301, 301],
        [NOW_SECONDS + 301, -301],
      ] as const) {
        await expectRejected(body, signedHeaders(body, { timestamp }), 401, OUT_OF_TOLERANCE);
        expect(lastLog()).toMatchObject({
          code: 'timestamp_out_of_tolerance',
          reason: 'timestamp_out_of_tolerance',
          skewSeconds: skew,
          status: 401,
        });
      }
    });

    it('checks the timestamp before the signature', async () => {
      const headers = {
        'x-groq-signature': 'nope',
        'x-groq-timestamp': String(NOW_SECONDS - 3600),
      };
      await expectRejected(body, headers, 401, OUT_OF_TOLERANCE);
    });
  });

  describe('413 payload too large', () => {
    const big = JSON.stringify(envelope({ data: { pad: 'x'.repeat(MAX_BODY) } }));

    it('refuses a declared Content-Length over the limit before reading, even unsigned', async () => {
      let pulled = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          pulled += 1;
          controller.enqueue(new Uint8Array(1024));
        },
      });
      await expectRejected(body, { 'content-length': String(MAX_BODY + 1) }, 413, TOO_LARGE);
      // Size comes first: the missing signature is not even looked at.
      expect(pulled).toBeLessThanOrEqual(1);
      expect(lastLog()).toMatchObject({ code: 'payload_too_large', status: 413 });
    });

    it('refuses a signed body over the limit sent whole', async () => {
      await expectRejected(big, signedHeaders(big), 413, TOO_LARGE);
    });

    it('refuses a chunked body without Content-Length once it passes the limit', async () => {
      const bytes = Buffer.from(big);
      const chunks = [bytes.subarray(0, 2000), bytes.subarray(2000, 4000), bytes.subarray(4000)];
      await expectRejected(streamOf(chunks), signedHeaders(bytes), 413, TOO_LARGE);
    });

    it('stops reading an endless stream right after the limit and cancels it', async () => {
      let pulled = 0;
      let cancelled = false;
      const endless = new ReadableStream<Uint8Array>({
        pull(controller) {
          pulled += 1;
          controller.enqueue(new Uint8Array(1000).fill(0x7b));
        },
        cancel() {
          cancelled = true;
        },
      });
      await expectRejected(endless, { 'transfer-encoding': 'chunked' }, 413, TOO_LARGE);
      expect(pulled).toBeLessThanOrEqual(Math.ceil(MAX_BODY / 1000) + 2);
      await waitFor(() => cancelled);
    });

    it('does not trust a Content-Length smaller than the body', async () => {
      const bytes = Buffer.from(big);
      const chunks = [bytes.subarray(0, 3000), bytes.subarray(3000)];
      await expectRejected(
        streamOf(chunks),
        { ...signedHeaders(bytes), 'content-length': '10' },
        413,
        TOO_LARGE,
      );
    });
  });

  describe('400 invalid payload (signed)', () => {
    const cases: [string, string | Uint8Array, string][] = [
      ['an empty body', '', 'body is empty'],
      ['invalid JSON', '{"id": "evt_1",', 'body is not JSON'],
      ['truncated JSON', '{', 'body is not JSON'],
      ['invalid UTF-8', new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), 'body is not UTF-8'],
      ['a JSON array', '[1,2,3]', 'body must be a JSON object'],
      ['a JSON string', '"evt_1"', 'body must be a JSON object'],
      ['JSON null', 'null', 'body must be a JSON object'],
      ['a JSON number', '42', 'body must be a JSON object'],
      ['a missing id', JSON.stringify({ ...envelope(), id: undefined }), 'id is required'],
      ['a numeric id', JSON.stringify(envelope({ id: 12 })), 'id must be a string'],
      ['an empty id', JSON.stringify(envelope({ id: '' })), 'id must not be empty'],
      [
        'an id of 256 characters',
        JSON.stringify(envelope({ id: 'x'.repeat(256) })),
        'id must be at most 255 characters',
      ],
      ['a missing type', JSON.stringify({ ...envelope(), type: undefined }), 'type is required'],
      ['a null type', JSON.stringify(envelope({ type: null })), 'type must be a string'],
      ['an empty type', JSON.stringify(envelope({ type: '' })), 'type must not be empty'],
      ['missing data', JSON.stringify({ ...envelope(), data: undefined }), 'data is required'],
      ['array data', JSON.stringify(envelope({ data: [] })), 'data must be a JSON object'],
      ['string data', JSON.stringify(envelope({ data: 'x' })), 'data must be a JSON object'],
      [
        'missing created',
        JSON.stringify({ ...envelope(), created: undefined }),
        'created is required',
      ],
      ['numeric created', JSON.stringify(envelope({ created: 1 })), 'created must be a string'],
    ];
    for (const [name, body, problem] of cases) {
      it(`rejects ${name}: "${problem}"`, async () => {
        const sent = await expectRejected(body, signedHeaders(body), 400, invalidPayload(problem));
        expect(lastLog()).toMatchObject({ code: 'invalid_payload', status: 400, problem });
        // The key matched; the payload did not: the log says which key, the body nothing of it.
        expect(lastLog().keyIndex).toBe(0);
        if (typeof body === 'string' && body.length > 2) expect(sent.text).not.toContain(body);
      });
    }

    it('never echoes the body, even when the parser would quote it', async () => {
      const body = '{"id":"evt_x","token":"s3cr3t-payload-value" oops}';
      const sent = await expectRejected(
        body,
        signedHeaders(body),
        400,
        invalidPayload('body is not JSON'),
      );
      expect(sent.text).not.toContain('s3cr3t');
      expect(logs.raw.at(-1)).not.toContain('s3cr3t');
    });

    it('stores the body as sent as the event (on the fast path): spacing, key order and escapes kept', async () => {
      const id = eventId();
      const body = `\ufeff{ "type" : "resource.created",\n "id":"${id}", "created":"x",\n  "data": {"n": 1.50, "s": "\\u00e9\\/"} }`;
      expect((await send(body, signedHeaders(body))).status).toBe(200);
      const stored = await client.hget(queue.toKey(jobIdFor(id)), 'data');
      // The text after the byte order mark, which decoding drops. BullMQ's stock `addBulk`
      // serialises the parsed event again: the same event, written its own way.
      if (path.kind === 'fast') {
        expect(stored).toBe(
          `{"event":${body.slice(1)},"receivedAt":"${new Date(NOW_MS).toISOString()}","keyIndex":0}`,
        );
      }
      const job = await queue.getJob(jobIdFor(id));
      expect(job?.data.event).toEqual({
        type: 'resource.created',
        id,
        created: 'x',
        data: { n: 1.5, s: 'é/' },
      });
    });

    it('refuses JSON nested deeper than 64 levels before parsing it, brackets in strings aside', async () => {
      const nestedData = (levels: number) =>
        `${'{"a":'.repeat(levels - 1)}{}${'}'.repeat(levels - 1)}`;
      const withData = (data: string) =>
        `{"id":"${eventId()}","type":"resource.created","data":${data},"created":"x"}`;
      // The envelope is level 1: data nested 63 deep is 64 in all, the most accepted.
      const deepest = withData(nestedData(63));
      expect((await send(deepest, signedHeaders(deepest))).status).toBe(200);
      const deeper = withData(nestedData(64));
      await expectRejected(
        deeper,
        signedHeaders(deeper),
        400,
        invalidPayload('JSON nested deeper than 64 levels'),
      );
      expect(lastLog()).toMatchObject({
        code: 'invalid_payload',
        problem: 'JSON nested deeper than 64 levels',
      });
      const inStrings = withData(JSON.stringify({ s: '['.repeat(500) }));
      expect((await send(inStrings, signedHeaders(inStrings))).status).toBe(200);
      // 10,000 levels, under a body limit that lets it through to the check.
      const large = build({ maxBodyBytes: 1_048_576 });
      const huge = withData(`${'['.repeat(10_000)}${']'.repeat(10_000)}`);
      const sent = await send(huge, signedHeaders(huge), { target: large.app });
      expect(sent.status).toBe(400);
      expect(sent.json()).toEqual(invalidPayload('JSON nested deeper than 64 levels'));
    });

    it('keeps a __proto__ key as data, polluting nothing', async () => {
      const body = `{"id":"${eventId()}","type":"resource.created","data":{"__proto__":{"polluted":true}},"created":"x"}`;
      expect((await send(body, signedHeaders(body))).status).toBe(200);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });
  });

  describe('400 request aborted', () => {
    it('answers 400, not 500, when the body stream fails midway', async () => {
      let sentOne = false;
      const failing = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sentOne) controller.error(new Error('socket hang up'));
          else controller.enqueue(new TextEncoder().encode('{"id":'));
          sentOne = true;
        },
      });
      await expectRejected(failing, signedHeaders('{"id":'), 400, {
        error: 'Request aborted',
        code: 'request_aborted',
      });
    });
  });

  describe('503 overloaded: the in-flight body budget', () => {
    const OVERLOADED = { error: 'Server overloaded', code: 'overloaded' };

    it('refuses a body that does not fit before reading it, then takes it once room is back', async () => {
      const budget = new BodyBudget(2000);
      const { app: bounded, metrics: boundedMetrics } = build({ bodyBudget: budget });
      const body = JSON.stringify(envelope());
      // Another request's body holds most of the budget.
      expect(budget.take(1900, 1900)).toBe(true);
      const before = await keys();
      const refused = await send(body, signedHeaders(body), { target: bounded });
      expect(refused.status).toBe(503);
      expect(refused.json()).toEqual(OVERLOADED);
      expect(refused.headers.get('retry-after')).toBe(String(RETRY_AFTER_SECONDS));
      expect(refused.headers.get('connection')).toBe('close');
      expect(await keys()).toEqual(before);
      expect(budget.held).toBe(1900);
      budget.give(1900);
      const accepted = await send(body, signedHeaders(body), { target: bounded });
      expect(accepted.status).toBe(200);
      // Given back once answered.
      expect(budget.held).toBe(0);
      expect(
        await boundedMetrics.registry.getSingleMetricAsString('groq_webhook_requests_total'),
      ).toContain('groq_webhook_requests_total{code="overloaded",service="ingest"} 1');
    });

    it('refuses a chunked body once it outgrows the budget, holding nothing afterwards', async () => {
      const budget = new BodyBudget(100);
      const { app: bounded } = build({ bodyBudget: budget });
      const chunk = new TextEncoder().encode(' '.repeat(60));
      const sent = await send(streamOf([chunk, chunk, chunk]), signedHeaders('x'), {
        target: bounded,
      });
      expect(sent.status).toBe(503);
      expect(sent.json()).toEqual(OVERLOADED);
      expect(budget.held).toBe(0);
    });

    it('gives the budget back after every kind of answer', async () => {
      const budget = new BodyBudget(1_000_000);
      const { app: bounded } = build({ bodyBudget: budget });
      const body = JSON.stringify(envelope());
      for (const headers of [
        signedHeaders(body),
        {},
        signedHeaders(body, { secret: 'wrong-secret-0123456' }),
      ]) {
        await send(body, headers, { target: bounded });
        expect(budget.held).toBe(0);
      }
      await send('{', signedHeaders('{'), { target: bounded });
      await send(' '.repeat(MAX_BODY + 1), signedHeaders('x'), { target: bounded });
      expect(budget.held).toBe(0);
    });
  });

  describe('503 queue unavailable', () => {
    let down: TestRedis;
    let downClient: RedisClient;
    let downProducer: EventProducer;

    beforeAll(async () => {
      down = await startRedis();
      downClient = createRedis({ redisUrl: down.url, redisClusterNodes: undefined }, 'producer');
      downProducer = new EventProducer({ client: downClient, settings, path });
      await waitFor(() => downClient.status === 'ready');
    });
    afterAll(async () => {
      await downProducer?.close();
      if (downClient) await closeRedis(downClient);
      await down?.cleanup();
    });

    it('answers 503 with Retry-After when Redis is unreachable, and marks nothing as seen', async () => {
      const own = build({
        producer: downProducer,
        isReady: async () => downClient.status === 'ready',
      });
      await down.kill();
      await waitFor(() => downClient.status !== 'ready');
      const event = envelope();
      const body = JSON.stringify(event);
      const started = Date.now();
      const sent = await send(body, signedHeaders(body), { target: own.app });
      expect(Date.now() - started).toBeLessThan(500 + 400);
      expect(sent.status).toBe(503);
      expect(sent.headers.get('retry-after')).toBe(String(RETRY_AFTER_SECONDS));
      expect(sent.json()).toEqual({ error: 'Queue unavailable', code: 'queue_unavailable' });
      expect(own.logs.lines.at(-1)).toMatchObject({
        level: 'error',
        code: 'queue_unavailable',
        status: 503,
        eventId: event.id,
      });
      const ready = await send(undefined, {}, { method: 'GET', path: '/readyz', target: own.app });
      expect(ready.status).toBe(503);

      down = await down.restart();
      await waitFor(() => downClient.status === 'ready', { timeoutMs: 10_000 });
      // Nothing was recorded during the outage: the retry is a new event, not a duplicate.
      expect(await down.command('EXISTS', idempotencyKey(String(event.id)))).toBe(':0\r\n');
      const retried = await send(body, signedHeaders(body), { target: own.app });
      expect(retried.status).toBe(200);
      expect(retried.json()).toEqual({ received: true });
    });

    it('answers 503 once the enqueue deadline passes while Redis hangs', async () => {
      const own = build({ producer: downProducer });
      // Warm the queue handle so the only thing slow is Redis itself.
      const warm = JSON.stringify(envelope());
      expect((await send(warm, signedHeaders(warm), { target: own.app })).status).toBe(200);
      // Every client's commands wait from here for 1.5 s: Redis is up but too slow.
      expect(await down.command('CLIENT', 'PAUSE', '1500', 'ALL')).toBe('+OK\r\n');
      const body = JSON.stringify(envelope());
      const started = Date.now();
      const sent = await send(body, signedHeaders(body), { target: own.app });
      const elapsed = Date.now() - started;
      expect(sent.status).toBe(503);
      expect(sent.headers.get('retry-after')).toBe(String(RETRY_AFTER_SECONDS));
      expect(elapsed).toBeGreaterThanOrEqual(450);
      expect(elapsed).toBeLessThan(1400);
      await waitFor(async () => (await down.command('PING')).startsWith('+PONG'));
    });
  });

  describe('other routes', () => {
    it('serves /healthz, /readyz and /metrics', async () => {
      const health = await send(undefined, {}, { method: 'GET', path: '/healthz' });
      expect(health.status).toBe(200);
      const ready = await send(undefined, {}, { method: 'GET', path: '/readyz' });
      expect(ready.status).toBe(200);
      expect(ready.json()).toEqual({ ready: true });
      const notReady = build({ isReady: async () => false });
      const refused = await send(
        undefined,
        {},
        { method: 'GET', path: '/readyz', target: notReady.app },
      );
      expect(refused.status).toBe(503);

      const text = (await send(undefined, {}, { method: 'GET', path: '/metrics' })).text;
      expect(text).toMatch(/groq_webhook_requests_total\{code="received",service="ingest"\} [1-9]/);
      expect(text).toMatch(
        /groq_webhook_requests_total\{code="invalid_signature",service="ingest"\} [1-9]/,
      );
      expect(text).toMatch(
        /groq_webhook_requests_total\{code="payload_too_large",service="ingest"\} [1-9]/,
      );
      expect(text).toContain(
        'groq_webhook_requests_total{code="internal_error",service="ingest"} 0',
      );
      expect(text).toMatch(/groq_webhook_enqueue_duration_seconds_count\{service="ingest"\} [1-9]/);
      expect(text).toContain('process_cpu_user_seconds_total');
      expect(await metrics.registry.getSingleMetricAsString('groq_webhook_requests_total')).toBe(
        text
          .slice(
            text.indexOf('# HELP groq_webhook_requests_total'),
            text.indexOf('# HELP groq_webhook_enqueue'),
          )
          .trim(),
      );
    });

    it('serves no /metrics when the metrics have a port of their own', async () => {
      const { app: quiet } = build({ metricsRoute: false });
      for (const method of ['GET', 'POST']) {
        const sent = await send(undefined, {}, { method, path: '/metrics', target: quiet });
        expect(sent.status).toBe(404);
        expect(sent.json()).toEqual({ error: 'Not found', code: 'not_found' });
      }
      const health = await send(undefined, {}, { method: 'GET', path: '/healthz', target: quiet });
      expect(health.status).toBe(200);
    });

    it('answers 405 with Allow for other methods and 404 for other paths, as JSON', async () => {
      const get = await send(undefined, {}, { method: 'GET' });
      expect(get.status).toBe(405);
      expect(get.headers.get('allow')).toBe('POST');
      expect(get.json()).toEqual({ error: 'Method not allowed', code: 'method_not_allowed' });
      const put = await send('{}', {}, { method: 'PUT' });
      expect(put.status).toBe(405);
      const postHealth = await send('', {}, { method: 'POST', path: '/healthz' });
      expect(postHealth.status).toBe(405);
      expect(postHealth.headers.get('allow')).toBe('GET, HEAD');
      const missing = await send('{}', {}, { path: '/webhooks/stripe' });
      expect(missing.status).toBe(404);
      expect(missing.json()).toEqual({ error: 'Not found', code: 'not_found' });
    });

    it('answers 500 without details when the producer itself is broken', async () => {
      const broken = build({
        producer: {
          enqueue: async () => {
            throw new TypeError(`bug near ${SECRET}`);
          },
        },
      });
      const body = JSON.stringify(envelope());
      const response = await broken.app.request('/webhooks/groq', {
        method: 'POST',
        body,
        headers: signedHeaders(body),
      });
      expect(response.status).toBe(500);
      const text = await response.text();
      expect(JSON.parse(text)).toEqual({ error: 'Internal error', code: 'internal_error' });
      expect(text).not.toContain(SECRET);
      expect(broken.logs.lines.at(-1)).toMatchObject({ level: 'error', code: 'internal_error' });
    });
  });
});
