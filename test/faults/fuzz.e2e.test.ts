import { Agent, request } from 'node:http';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { FUZZ_MAX_BODY_BYTES, type FuzzRequest, fuzzRecipe, materialise } from './support/fuzz.js';
import { QUEUE_KEY, rssKiB, Stack } from './support/stack.js';

const BATCH = 50;
const RUNS = 400; // 400 batches of 50: 20,000 requests
/** Growth of the ingest's resident memory over the second half of the run: it must level off. */
const RSS_SECOND_HALF_GROWTH_MIB = 64;
/** Resident memory the ingest must stay under, with a 4 KiB body limit. */
const RSS_LIMIT_MIB = 512;

interface Answer {
  request: FuzzRequest;
  status: number | undefined;
  error: string | undefined;
  body: string;
}

describe('fault: fuzzing the webhook endpoint', () => {
  const stack = new Stack();
  afterAll(() => stack?.cleanup());

  it('answers 20,000 generated requests with 2xx or a contract 4xx, stays bounded, and enqueues only valid signed envelopes', async () => {
    const redis = await stack.redis();
    const ingest = await stack.ingest(redis.url, {
      MAX_BODY_BYTES: String(FUZZ_MAX_BODY_BYTES),
      // Every rejection is a warn line: keep the log quiet so the run measures the ingest.
      LOG_LEVEL: 'error',
    });
    const queue = stack.client(redis.url);
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
    let seq = 0;
    let sent = 0;
    const rss: number[] = [];
    const mismatches: Answer[] = [];
    const accepted = new Map<string, string>();
    const statuses = new Map<string, number>();

    await fc
      .assert(
        fc.asyncProperty(
          fc.array(fuzzRecipe, { minLength: BATCH, maxLength: BATCH }),
          async (batch) => {
            const now = Math.floor(Date.now() / 1000);
            const answers = await Promise.all(
              batch.map((recipe) => send(ingest.port, agent, materialise(recipe, now, seq++))),
            );
            sent += answers.length;
            let ok = true;
            for (const answer of answers) {
              const key =
                answer.status === undefined ? `error:${answer.error}` : String(answer.status);
              statuses.set(key, (statuses.get(key) ?? 0) + 1);
              const { request } = answer;
              if (answer.status === undefined || !request.expected.includes(answer.status)) {
                ok = false;
                if (mismatches.length < 20) mismatches.push(answer);
              }
              if (answer.status === 200 && request.eventId !== undefined && request.canonical) {
                accepted.set(request.eventId, request.canonical);
              }
            }
            // Memory after the first batch (warm), half way, and at the end: it must level off.
            if (sent === BATCH || sent === (RUNS / 2) * BATCH)
              rss.push(await rssKiB(ingest.process.pid));
            return ok;
          },
        ),
        { numRuns: RUNS, seed, endOnFailure: true },
      )
      .catch((error: Error) => {
        throw new Error(
          `${error.message.split('\n')[0]} (FUZZ_SEED=${seed})\n${mismatches
            .map(
              (m) =>
                `${m.request.description} ${JSON.stringify(m.request.headers).slice(0, 300)}: expected ${m.request.expected.join('|')}, got ${m.status ?? m.error} ${m.body.slice(0, 200)}`,
            )
            .join('\n')}`,
        );
      });
    rss.push(await rssKiB(ingest.process.pid));
    const [rssWarm = 0, rssHalf = 0, rssEnd = 0] = rss.map((kib) => Math.round(kib / 1024));
    agent.destroy();

    // What reached the queue: exactly the accepted valid envelopes, stored as they were sent.
    const jobIds = await queue.lrange(`${QUEUE_KEY}:wait`, 0, -1);
    const stored = new Map<string, string>();
    for (const jobId of jobIds) {
      const data = await queue.hget(`${QUEUE_KEY}:${jobId}`, 'data');
      const event = (JSON.parse(data ?? '{}') as { event?: { id?: string } }).event;
      stored.set(String(event?.id), JSON.stringify(event));
    }
    const missing = [...accepted.keys()].filter((id) => stored.get(id) !== accepted.get(id));
    const extra = [...stored.keys()].filter((id) => !accepted.has(id));

    const counts = Object.fromEntries([...statuses].sort());
    console.log(
      `fuzz: ${sent} requests (FUZZ_SEED=${seed}), answers ${JSON.stringify(counts)}, ${accepted.size} enqueued, ingest RSS ${rssWarm} -> ${rssHalf} -> ${rssEnd} MiB (warm, half way, end)`,
    );
    console.log(
      [
        'scenario=fuzz',
        `sent=${sent}`,
        `2xx=${statuses.get('200') ?? 0}`,
        `non2xx=${sent - (statuses.get('200') ?? 0)}`,
        // No worker runs here: the "effect" of an accepted request is its job in the queue.
        `effects=${jobIds.length}`,
        `lost=${missing.length}`,
        `duplicated=${extra.length + jobIds.length - stored.size}`,
        'max_recovery_s=0.00',
      ].join(' '),
    );
    expect(sent).toBeGreaterThanOrEqual(20_000);
    expect(mismatches).toEqual([]);
    for (const status of statuses.keys()) expect(['200', '400', '401', '413']).toContain(status);
    expect(missing).toEqual([]);
    expect(extra).toEqual([]);
    expect(jobIds.length).toBe(stored.size);
    // Bounded: the second half of the run adds little, and the total stays modest. (The first
    // half grows while V8 and malloc size their pools for this load; heap after GC stays ~30 MiB.)
    expect(rssEnd - rssHalf).toBeLessThan(RSS_SECOND_HALF_GROWTH_MIB);
    expect(rssEnd).toBeLessThan(RSS_LIMIT_MIB);
    expect(ingest.process.child.exitCode).toBeNull();
  }, 300_000);
});

/** Sends one request as generated: Content-Length, or chunked in `chunkSize` pieces. */
function send(port: number, agent: Agent, fuzz: FuzzRequest): Promise<Answer> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (status: number | undefined, error: string | undefined, body = '') => {
      if (settled) return;
      settled = true;
      resolve({ request: fuzz, status, error, body });
    };
    const headers = { ...fuzz.headers };
    if (!fuzz.chunked) headers['content-length'] = String(fuzz.body.byteLength);
    let req: ReturnType<typeof request>;
    try {
      req = request(
        {
          host: '127.0.0.1',
          port,
          path: '/webhooks/groq',
          method: 'POST',
          headers,
          agent,
          timeout: 10_000,
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            text += chunk;
          });
          res.on('end', () => finish(res.statusCode, undefined, text));
          res.on('error', (error) => finish(undefined, error.message));
        },
      );
    } catch (error) {
      // Headers Node itself refuses to send are not a server answer: skip, but show them.
      finish(undefined, `client refused: ${(error as Error).message}`);
      return;
    }
    req.on('timeout', () => {
      finish(undefined, 'hang');
      req.destroy();
    });
    req.on('error', (error: NodeJS.ErrnoException) =>
      finish(undefined, error.code ?? error.message),
    );
    if (!fuzz.chunked) {
      req.end(fuzz.body);
      return;
    }
    for (let offset = 0; offset < fuzz.body.byteLength; offset += fuzz.chunkSize) {
      req.write(fuzz.body.subarray(offset, offset + fuzz.chunkSize));
    }
    req.end();
  });
}
