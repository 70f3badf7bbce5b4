import { type ClientRequest, type IncomingMessage, request } from 'node:http';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  closeRedis,
  createRedis,
  type EventQueue,
  idempotencyKey,
  jobIdFor,
  openQueue,
  type RedisClient,
} from '@groq-webhooks/queue';
import { sign } from '@groq-webhooks/signature';
import {
  freePort,
  outsideAddress,
  type RunningProcess,
  startProcess,
  startRedis,
  stopAllProcesses,
  type TestRedis,
  waitFor,
} from '@groq-webhooks/testing';
import { afterEach, describe, expect, it } from 'vitest';

/** The built entry point (the test task builds first). */
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const SECRET = 'whsec_IntegrationSecret_5b2f0c_0123456789';
const ENQUEUE_TIMEOUT_MS = 800;
const settings = {
  queueName: 'groq-events',
  queuePrefix: '{groq}',
  queueShards: 1,
  jobAttempts: 8,
  backoffBaseMs: 1000,
};

let counter = 0;
function event(type = 'resource.created'): Record<string, unknown> {
  counter += 1;
  return {
    id: `evt_main_${process.pid}_${counter}`,
    type,
    data: { resource: { id: `res_${counter}` } },
    created: new Date().toISOString(),
  };
}

interface Ingest {
  process: RunningProcess;
  url: string;
  port: number;
}

/**
 * Starts the ingest and, unless told not to, waits until it reports ready: it listens before its
 * Redis connection is up, and a webhook sent in between gets a (correct) 503.
 */
async function startIngest(
  redisUrl: string,
  env: Record<string, string> = {},
  { waitReady = true } = {},
): Promise<Ingest> {
  const port = await freePort();
  const child = startProcess('node', [MAIN], {
    env: {
      GROQ_WEBHOOK_SECRET: SECRET,
      REDIS_URL: redisUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      ENQUEUE_TIMEOUT_MS: String(ENQUEUE_TIMEOUT_MS),
      MAX_BODY_BYTES: '65536',
      ...env,
    },
  });
  await child.waitForOutput('ingest listening');
  const ingest = { process: child, url: `http://127.0.0.1:${port}`, port };
  if (waitReady) {
    await waitFor(async () => (await status(ingest, '/readyz')) === 200, {
      description: 'the ingest to reach Redis',
    });
  }
  return ingest;
}

async function deliver(
  ingest: Ingest,
  payload: Record<string, unknown>,
): Promise<{ status: number; body: unknown; headers: Headers; ms: number }> {
  const body = JSON.stringify(payload);
  const started = Date.now();
  const response = await fetch(`${ingest.url}/webhooks/groq`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...sign({ secret: SECRET, body }) },
    body,
  });
  const text = await response.text();
  expect(text).not.toContain(SECRET);
  return {
    status: response.status,
    body: JSON.parse(text),
    headers: response.headers,
    ms: Date.now() - started,
  };
}

async function status(ingest: Ingest, path: string): Promise<number> {
  return (await fetch(`${ingest.url}${path}`)).status;
}

/** A raw HTTP request whose body the test writes piece by piece. */
function openUpload(
  ingest: Ingest,
  headers: Record<string, string>,
): {
  req: ClientRequest;
  response: Promise<{ status: number; text: string; connection: string | undefined }>;
} {
  const req = request(`${ingest.url}/webhooks/groq`, {
    method: 'POST',
    headers: { ...headers, 'transfer-encoding': 'chunked' },
  });
  const response = new Promise<{
    status: number;
    text: string;
    connection: string | undefined;
  }>((resolve, reject) => {
    req.on('response', (res: IncomingMessage) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, text, connection: res.headers.connection }),
      );
    });
    req.on('error', reject);
  });
  req.flushHeaders();
  return { req, response };
}

/** Sends raw bytes on a new connection; resolves with what came back once the server closed it. */
function rawExchange(port: number, text: string): Promise<{ reply: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let reply = '';
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      reply += chunk;
    });
    socket.once('close', () => resolve({ reply, ms: Date.now() - started }));
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'ECONNRESET' && error.code !== 'EPIPE') reject(error);
    });
  });
}

function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

describe('ingest process (node dist/main.js) with a real redis-server', () => {
  const redises: TestRedis[] = [];
  const clients: RedisClient[] = [];
  const queues: EventQueue[] = [];

  async function redisServer(port?: number): Promise<TestRedis> {
    const started = await startRedis(port === undefined ? {} : { port });
    redises.push(started);
    return started;
  }

  async function inspect(redis: TestRedis): Promise<{ client: RedisClient; queue: EventQueue }> {
    const client = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'admin');
    clients.push(client);
    await waitFor(() => client.status === 'ready');
    const queue = openQueue(client, { index: 0, name: 'groq-events', prefix: '{groq}' }, settings);
    queues.push(queue);
    return { client, queue };
  }

  afterEach(async () => {
    await stopAllProcesses();
    await Promise.all(queues.splice(0).map((queue) => queue.close()));
    await Promise.all(clients.splice(0).map((client) => closeRedis(client)));
    await Promise.all(redises.splice(0).map((redis) => redis.cleanup()));
  });

  it('puts a valid event in the queue once; a duplicate adds nothing', async () => {
    const redis = await redisServer();
    const ingest = await startIngest(redis.url);
    const { queue } = await inspect(redis);
    const payload = event('resource.deleted');

    const first = await deliver(ingest, payload);
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ received: true });
    const job = await queue.getJob(jobIdFor(String(payload.id)));
    expect(job?.name).toBe('resource.deleted');
    expect(job?.id).toBe(jobIdFor(String(payload.id)));
    expect(job?.data.event).toEqual(payload);
    expect(job?.data.keyIndex).toBe(0);
    expect(Date.parse(job?.data.receivedAt ?? '')).toBeGreaterThan(Date.now() - 60_000);

    const counts = await queue.getJobCounts();
    const second = await deliver(ingest, payload);
    expect(second.status).toBe(200);
    expect(second.body).toEqual({ received: true, duplicate: true });
    expect(await queue.getJobCounts()).toEqual(counts);

    // A line leaves at the end of its turn: it may reach the pipe just after the response.
    const accepted = () =>
      ingest.process.logLines().filter((line) => line.msg === 'webhook accepted');
    await waitFor(() => accepted().length === 2, { description: 'two webhook accepted lines' });
    const lines = accepted();
    expect(lines.map((line) => line.code)).toEqual(['received', 'duplicate']);
    expect(lines[0]).toMatchObject({ eventId: payload.id, type: 'resource.deleted', keyIndex: 0 });
    expect(ingest.process.output()).not.toContain(SECRET);
  });

  it('answers 503 within the deadline while Redis is down, then 200 again from the same process', async () => {
    const redis = await redisServer();
    const ingest = await startIngest(redis.url);
    expect((await deliver(ingest, event())).status).toBe(200);

    await redis.kill();
    const lost = event();
    const refused = await deliver(ingest, lost);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toMatch(/^[1-9][0-9]*$/);
    expect(refused.body).toEqual({ error: 'Queue unavailable', code: 'queue_unavailable' });
    expect(refused.ms).toBeLessThan(ENQUEUE_TIMEOUT_MS + 700);
    expect(await status(ingest, '/readyz')).toBe(503);
    expect(await status(ingest, '/healthz')).toBe(200);

    const restarted = await redis.restart();
    redises.push(restarted);
    await waitFor(async () => (await status(ingest, '/readyz')) === 200, { timeoutMs: 15_000 });
    const { client, queue } = await inspect(restarted);
    // Nothing about the refused event reached Redis: its redelivery is new, not a duplicate.
    expect(await client.exists(idempotencyKey(String(lost.id)))).toBe(0);
    expect(await queue.getJob(jobIdFor(String(lost.id)))).toBeUndefined();
    const again = await deliver(ingest, lost);
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ received: true });
    expect(await queue.getJob(jobIdFor(String(lost.id)))).toBeDefined();
    expect(ingest.process.child.exitCode).toBeNull();
  });

  it('starts before Redis exists: /readyz 503 and 503s, then ready and enqueuing once it answers', async () => {
    const port = await freePort();
    const ingest = await startIngest(`redis://127.0.0.1:${port}`, {}, { waitReady: false });
    expect(await status(ingest, '/healthz')).toBe(200);
    expect(await status(ingest, '/readyz')).toBe(503);
    const early = await deliver(ingest, event());
    expect(early.status).toBe(503);
    expect(early.headers.get('retry-after')).not.toBeNull();

    const redis = await redisServer(port);
    await waitFor(async () => (await status(ingest, '/readyz')) === 200, { timeoutMs: 15_000 });
    const payload = event();
    expect((await deliver(ingest, payload)).status).toBe(200);
    const { queue } = await inspect(redis);
    expect((await queue.getJob(jobIdFor(String(payload.id))))?.data.event).toEqual(payload);
  });

  it('on SIGTERM stops accepting, finishes the request in flight, closes idle sockets, exits 0', async () => {
    const redis = await redisServer();
    const ingest = await startIngest(redis.url, { LOG_LEVEL: 'debug' });
    // An idle keep-alive socket must not hold the shutdown up.
    const keepAlive = await fetch(`${ingest.url}/healthz`, { keepalive: true });
    await keepAlive.text();

    const payload = event();
    const body = Buffer.from(JSON.stringify(payload));
    const upload = openUpload(ingest, { ...sign({ secret: SECRET, body }) });
    upload.req.write(body.subarray(0, 10));
    await ingest.process.waitForOutput('webhook request started');

    ingest.process.child.kill('SIGTERM');
    await ingest.process.waitForOutput('shutting down');
    await waitFor(() => refusesConnections(ingest.port), { description: 'listener closed' });
    expect(ingest.process.child.exitCode).toBeNull();

    upload.req.end(body.subarray(10));
    const answered = await upload.response;
    const answeredAt = Date.now();
    expect(answered.status).toBe(200);
    expect(JSON.parse(answered.text)).toEqual({ received: true });
    // Answered while draining: the sender must not reuse the connection for another request.
    expect(answered.connection).toBe('close');
    expect(await ingest.process.exited).toBe(0);
    // Well inside the keep-alive timeout (5 s): nothing waited for sockets to time out.
    expect(Date.now() - answeredAt).toBeLessThan(2000);
    expect(ingest.process.output()).toContain('ingest stopped');
    const { queue } = await inspect(redis);
    expect(await queue.getJob(jobIdFor(String(payload.id)))).toBeDefined();
  });

  it('a second signal ends a shutdown that is stuck on a request', async () => {
    const redis = await redisServer();
    const ingest = await startIngest(redis.url, { LOG_LEVEL: 'debug' });
    const body = Buffer.from(JSON.stringify(event()));
    const upload = openUpload(ingest, { ...sign({ secret: SECRET, body }) });
    upload.response.catch(() => {});
    upload.req.write(body.subarray(0, 10));
    await ingest.process.waitForOutput('webhook request started');
    ingest.process.child.kill('SIGTERM');
    await ingest.process.waitForOutput('shutting down');
    ingest.process.child.kill('SIGTERM');
    expect(await ingest.process.exited).toBe(1);
    expect(ingest.process.output()).toContain('second signal');
    upload.req.destroy();
  });

  it('over the wire: chunked and declared bodies over the limit get 413, huge headers a 4xx, never a 500', async () => {
    const redis = await redisServer();
    const ingest = await startIngest(redis.url, { MAX_BODY_BYTES: '1024' });

    const declared = await fetch(`${ingest.url}/webhooks/groq`, {
      method: 'POST',
      headers: { 'content-length': '2048' },
      body: 'x'.repeat(2048),
    });
    expect(declared.status).toBe(413);
    expect(await declared.json()).toEqual({
      error: 'Payload too large',
      code: 'payload_too_large',
    });

    // Expect: 100-continue with a size over the limit: 413 before any of the body is sent.
    const asked = await new Promise<{ status: number; continued: boolean }>((resolve, reject) => {
      let continued = false;
      const req = request(`${ingest.url}/webhooks/groq`, {
        method: 'POST',
        headers: { expect: '100-continue', 'content-length': '2048' },
      });
      req.on('continue', () => {
        continued = true;
        req.end(Buffer.alloc(2048, 0x20));
      });
      req.on('response', (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, continued });
        req.destroy();
      });
      req.on('error', reject);
      req.flushHeaders();
    });
    expect(asked).toEqual({ status: 413, continued: false });

    const big = Buffer.alloc(4096, 0x20);
    const upload = openUpload(ingest, { ...sign({ secret: SECRET, body: big }) });
    upload.req.write(big.subarray(0, 512));
    upload.req.write(big.subarray(512, 1536));
    // The answer comes without the rest of the body ever being sent.
    const chunked = await upload.response;
    expect(chunked.status).toBe(413);
    expect(JSON.parse(chunked.text)).toEqual({
      error: 'Payload too large',
      code: 'payload_too_large',
    });
    upload.req.destroy();

    const huge = await fetch(`${ingest.url}/webhooks/groq`, {
      method: 'POST',
      headers: { 'x-groq-signature': 'a'.repeat(64 * 1024), 'x-groq-timestamp': '1' },
      body: '{}',
    }).catch(() => undefined);
    if (huge !== undefined) {
      expect(huge.status).toBeGreaterThanOrEqual(400);
      expect(huge.status).toBeLessThan(500);
    }

    // Multi-byte characters in the signature header, sent as raw UTF-8 bytes.
    const weird = await new Promise<number>((resolve, reject) => {
      const req = request(`${ingest.url}/webhooks/groq`, {
        method: 'POST',
        headers: {
          'x-groq-signature': Buffer.from('ü'.repeat(64)).toString('latin1'),
          'x-groq-timestamp': String(Math.floor(Date.now() / 1000)),
        },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end('{}');
    });
    expect(weird).toBe(401);

    const payload = event();
    expect((await deliver(ingest, payload)).status).toBe(200);
    const codes = ingest.process.logLines().map((line) => line.code);
    expect(codes).not.toContain('internal_error');
  });

  it('Expect: 100-continue is answered 503 without the body while the in-flight body budget is full, and continued once it frees', async () => {
    const redis = await redisServer();
    const ingest = await startIngest(redis.url, { MAX_INFLIGHT_BODY_BYTES: '65536' });
    // A slow upload declaring the whole budget holds it.
    const hold = request(`${ingest.url}/webhooks/groq`, {
      method: 'POST',
      headers: { 'content-length': '65536', 'content-type': 'application/json' },
    });
    hold.on('error', () => {});
    hold.write('{');
    const payload = event();
    const body = Buffer.from(JSON.stringify(payload));
    const ask = () =>
      new Promise<{ status: number; continued: boolean }>((resolve, reject) => {
        let continued = false;
        const req = request(`${ingest.url}/webhooks/groq`, {
          method: 'POST',
          headers: {
            expect: '100-continue',
            'content-length': String(body.byteLength),
            'content-type': 'application/json',
            ...sign({ secret: SECRET, body }),
          },
        });
        req.on('continue', () => {
          continued = true;
          req.end(body);
        });
        req.on('response', (res) => {
          res.resume();
          resolve({ status: res.statusCode ?? 0, continued });
          if (!continued) req.destroy();
        });
        req.on('error', reject);
        req.flushHeaders();
      });
    try {
      // The hold's reservation is taken once its request reaches the app: ask until it has.
      const refused = await waitFor(
        async () => {
          const answer = await ask();
          return answer.status === 503 ? answer : undefined;
        },
        { timeoutMs: 10_000, description: 'a 503 while the budget is held' },
      );
      expect(refused).toEqual({ status: 503, continued: false });
    } finally {
      hold.destroy();
    }
    const accepted = await waitFor(
      async () => {
        const answer = await ask();
        return answer.status === 200 ? answer : undefined;
      },
      { timeoutMs: 10_000, description: 'a 200 once the budget is free' },
    );
    expect(accepted).toEqual({ status: 200, continued: true });
  });

  it('over the wire: a chunked body sent in pieces is read whole; a client gone midway is logged, not fatal', async () => {
    const redis = await redisServer();
    const ingest = await startIngest(redis.url);
    const { queue } = await inspect(redis);
    const payload = event();
    const body = Buffer.from(JSON.stringify(payload));
    const upload = openUpload(ingest, {
      'content-type': 'application/json',
      ...sign({ secret: SECRET, body }),
    });
    upload.req.write(body.subarray(0, 10));
    upload.req.write(body.subarray(10, 40));
    upload.req.end(body.subarray(40));
    const answer = await upload.response;
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toEqual({ received: true });
    expect((await queue.getJob(jobIdFor(String(payload.id))))?.data.event).toEqual(payload);

    // Declares 1000 bytes, sends 100, hangs up.
    await new Promise<void>((resolve, reject) => {
      const socket = connect(ingest.port, '127.0.0.1', () => {
        socket.write(
          'POST /webhooks/groq HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n' +
            'x'.repeat(100),
          () => {
            socket.destroy();
            resolve();
          },
        );
      });
      socket.once('error', reject);
    });
    await waitFor(() => ingest.process.logLines().some((line) => line.code === 'request_aborted'));
    expect((await deliver(ingest, event())).status).toBe(200);
  });

  it('counts, answers and logs (rate-limited) the requests Node refuses before the app sees them', async () => {
    const redis = await redisServer();
    const ingest = await startIngest(redis.url, {
      HEADERS_TIMEOUT_MS: '500',
      REQUEST_TIMEOUT_MS: '1000',
    });
    const signature = 'f'.repeat(64);
    // A smuggling attempt: both lengths. Five of them: one log line, five counted.
    for (let i = 0; i < 5; i++) {
      const smuggled = await rawExchange(
        ingest.port,
        `POST /webhooks/groq HTTP/1.1\r\nHost: x\r\nx-groq-signature: ${signature}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      );
      expect(smuggled.reply).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    }
    const oversized = await rawExchange(
      ingest.port,
      `GET /healthz HTTP/1.1\r\nHost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`,
    );
    expect(oversized.reply).toMatch(/^HTTP\/1\.1 431 /);
    // Headers never finished: 408 once HEADERS_TIMEOUT_MS passes (checked every 500 ms here).
    const slowHeaders = await rawExchange(
      ingest.port,
      'POST /webhooks/groq HTTP/1.1\r\nHost: x\r\n',
    );
    expect(slowHeaders.reply).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(slowHeaders.ms).toBeLessThan(500 + 500 + 1500);
    // Headers done, body never finished: 408 once REQUEST_TIMEOUT_MS passes.
    const slowBody = await rawExchange(
      ingest.port,
      'POST /webhooks/groq HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"id":',
    );
    expect(slowBody.reply).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(slowBody.ms).toBeLessThan(1000 + 500 + 1500);

    const metrics = await (await fetch(`${ingest.url}/metrics`)).text();
    expect(metrics).toMatch(/groq_webhook_client_errors_total\{kind="malformed"[^}]*\} 5\n/);
    expect(metrics).toMatch(
      /groq_webhook_client_errors_total\{kind="headers_too_large"[^}]*\} 1\n/,
    );
    expect(metrics).toMatch(/groq_webhook_client_errors_total\{kind="request_timeout"[^}]*\} 2\n/);
    const refused = await waitFor(
      () => {
        const lines = ingest.process
          .logLines()
          .filter((line) => line.msg === 'request refused by the HTTP server');
        return lines.length >= 3 ? lines : undefined;
      },
      { description: 'log lines about refused requests' },
    );
    expect(refused.filter((line) => line.kind === 'malformed')).toHaveLength(1);
    expect(refused.find((line) => line.kind === 'malformed')).toMatchObject({
      level: 'warn',
      errorCode: 'HPE_INVALID_TRANSFER_ENCODING',
      status: 400,
      remoteAddress: '127.0.0.1',
    });
    expect(refused.find((line) => line.kind === 'headers_too_large')).toMatchObject({
      status: 431,
    });
    expect(refused.find((line) => line.kind === 'request_timeout')).toMatchObject({ status: 408 });
    // The request bytes (and so the signature) never reach the log.
    expect(ingest.process.output()).not.toContain(signature);
    expect((await deliver(ingest, event())).status).toBe(200);
  });

  it('with METRICS_PORT, serves /metrics there (loopback by default) and not on the public port', async () => {
    const redis = await redisServer();
    const metricsPort = await freePort();
    const ingest = await startIngest(redis.url, {
      METRICS_PORT: String(metricsPort),
      HOST: '0.0.0.0',
    });
    expect((await deliver(ingest, event())).status).toBe(200);
    const hidden = await fetch(`${ingest.url}/metrics`);
    expect(hidden.status).toBe(404);
    expect(await hidden.text()).not.toContain('groq_webhook');
    const served = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(served.status).toBe(200);
    expect(await served.text()).toMatch(
      /groq_webhook_requests_total\{code="received",service="ingest"\} 1/,
    );
    const outside = outsideAddress();
    if (outside !== undefined) {
      await expect(fetch(`http://${outside}:${metricsPort}/metrics`)).rejects.toThrow();
      // The webhook port itself listens on every interface (HOST=0.0.0.0 here), so the refusal
      // above is the metrics host's doing.
      expect((await fetch(`http://${outside}:${ingest.port}/healthz`)).status).toBe(200);
    }
  });

  it('warns in one line about a secret shorter than 32 characters, without naming it', async () => {
    const redis = await redisServer();
    const short = 'twenty-chars-secret!';
    const ingest = await startIngest(redis.url, { GROQ_WEBHOOK_SECRET: short });
    const warning = ingest.process
      .logLines()
      .find((line) => String(line.msg).startsWith('GROQ_WEBHOOK_SECRET'));
    expect(warning).toMatchObject({
      level: 'warn',
      msg: 'GROQ_WEBHOOK_SECRET entry 1 is shorter than 32 characters: use a long random secret (e.g. openssl rand -hex 32)',
    });
    expect(ingest.process.output()).not.toContain(short);
    // The long secret of the other tests draws none.
    const other = await startIngest(redis.url);
    expect(other.process.output()).not.toContain('shorter than 32');
  });

  it.each([
    ['PORT=abc', { PORT: 'abc' }, 'PORT'],
    ['no secret', { GROQ_WEBHOOK_SECRET: undefined }, 'GROQ_WEBHOOK_SECRET'],
    ['a one-character secret', { GROQ_WEBHOOK_SECRET: 'a' }, 'GROQ_WEBHOOK_SECRET'],
    ['a bad REDIS_URL', { REDIS_URL: 'http://nope' }, 'REDIS_URL'],
  ] as const)(
    'refuses to start with %s: one line naming the variable',
    async (_, env, variable) => {
      const child = startProcess('node', [MAIN], {
        env: {
          GROQ_WEBHOOK_SECRET: SECRET,
          REDIS_URL: 'redis://127.0.0.1:1',
          HOST: '127.0.0.1',
          ...env,
        },
      });
      const code = await child.exited;
      expect(code).not.toBe(0);
      const lines = child.output().trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(variable);
      expect(child.output()).not.toContain(SECRET);
    },
  );
});
