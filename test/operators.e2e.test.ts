import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  freePort,
  type RunningProcess,
  startProcess,
  startRedis,
  type TestRedis,
  waitFor,
} from '@groq-webhooks/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, runCli } from './support/cli.js';
import { ENTRY, ROOT } from './support/paths.js';

const SECRET = 'whsec_operators_e2e_secret_0123456789';
const HANDLERS = join(ROOT, 'test/fixtures/operators-handlers.mjs');
/** BullMQ keys of the (single-shard) queue, to check the CLI's counts against Redis itself. */
const KEY = '{groq}:groq-events';

interface Effect {
  id: string;
  type: string;
  attempt: number;
  outcome: 'ok' | 'failed';
}

interface ListJson {
  total: number;
  events: {
    eventId: string;
    type: string;
    attempts: number;
    lastError: string;
    failedAt: string;
  }[];
}

describe('groq-webhooks CLI against real ingest, worker and redis-server processes', () => {
  let redis: TestRedis;
  let ingest: RunningProcess;
  let worker: RunningProcess;
  let direct: Redis;
  let port: number;
  const dir = mkdtempSync(join(tmpdir(), 'groq-operators-'));
  const effectsFile = join(dir, 'effects.jsonl');
  const fixedFile = join(dir, 'fixed.txt');
  let baseEnv: Record<string, string | undefined>;

  /** Runs the built CLI (no terminal: pipes) and collects its exit code and output. */
  function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
    return runCli(args, { ...baseEnv, ...env });
  }

  function effects(id: string): Effect[] {
    if (!existsSync(effectsFile)) return [];
    return readFileSync(effectsFile, 'utf8')
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line) as Effect)
      .filter((effect) => effect.id === id);
  }

  async function failedList(): Promise<ListJson> {
    const result = await cli(['failed', 'list', '--json', '--limit', '1000']);
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as ListJson;
  }

  /** Sends one event through the CLI and waits until the worker failed it for good. */
  async function sendFailing(id: string): Promise<void> {
    const sent = await cli(['trigger', 'resource.updated', '--id', id, '--data', '{"fail":true}']);
    expect(sent.code, sent.stderr).toBe(0);
    await waitFor(async () => (await direct.zscore(`${KEY}:failed`, `evt-${id}`)) !== null, {
      timeoutMs: 20_000,
      description: `${id} in the failed set`,
    });
  }

  function expectOneLine(result: CliResult, pattern: RegExp): void {
    expect(result.stderr).toMatch(pattern);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  }

  beforeAll(async () => {
    for (const entry of [ENTRY.ingest, ENTRY.worker, ENTRY.cli]) {
      if (!existsSync(entry)) throw new Error(`${entry} is missing: run pnpm build first`);
    }
    redis = await startRedis();
    direct = new Redis(redis.url);
    port = await freePort();
    const shared = {
      REDIS_URL: redis.url,
      REDIS_CLUSTER_NODES: undefined,
      QUEUE_NAME: undefined,
      QUEUE_PREFIX: undefined,
      QUEUE_SHARDS: undefined,
      JOB_ATTEMPTS: '2',
      BACKOFF_BASE_MS: '20',
      LOG_LEVEL: 'info',
    };
    baseEnv = { ...shared, GROQ_WEBHOOK_SECRET: SECRET, PORT: String(port) };
    ingest = startProcess('node', [ENTRY.ingest], {
      env: { ...shared, GROQ_WEBHOOK_SECRET: SECRET, PORT: String(port), HOST: '127.0.0.1' },
    });
    worker = startProcess('node', [ENTRY.worker], {
      env: {
        ...shared,
        HANDLERS_MODULE: HANDLERS,
        WORKER_METRICS_PORT: '0',
        OPERATORS_EFFECTS_FILE: effectsFile,
        OPERATORS_FIXED_FILE: fixedFile,
      },
    });
    await ingest.waitForOutput('ingest listening', 20_000);
    await worker.waitForOutput('Worker ready', 20_000);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([ingest?.stop(), worker?.stop()]);
    direct?.disconnect();
    await redis?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('trigger delivers a signed event that the worker handles', async () => {
    const result = await cli([
      'trigger',
      'resource.created',
      '--id',
      'evt_ok_1',
      '--data',
      '{"id":"res_1"}',
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('evt_ok_1  200 {"received":true}\n');
    await waitFor(() => effects('evt_ok_1').length === 1, { timeoutMs: 15_000 });
    expect(effects('evt_ok_1')).toEqual([
      { id: 'evt_ok_1', type: 'resource.created', attempt: 1, outcome: 'ok' },
    ]);
  }, 30_000);

  it('trigger --count sends numbered events and prints a summary line', async () => {
    const result = await cli(['trigger', 'resource.deleted', '--id', 'evt_batch', '--count', '5']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^sent 5, 2xx 5, 4xx 0, 5xx 0, errors 0, [0-9.]+ req\/s$/m);
    await waitFor(() =>
      [1, 2, 3, 4, 5].every((n) => effects(`evt_batch-${n}`).some((e) => e.outcome === 'ok')),
    );
  }, 30_000);

  it('a failing event appears in failed list --json with its error', async () => {
    await sendFailing('evt_fail_1');
    const list = await failedList();
    const entry = list.events.find((event) => event.eventId === 'evt_fail_1');
    expect(entry).toMatchObject({
      type: 'resource.updated',
      attempts: 2,
      lastError: 'payment provider rejected evt_fail_1 (attempt 2)',
    });
    expect(Date.parse(entry?.failedAt ?? '')).toBeGreaterThan(Date.now() - 60_000);
    expect(effects('evt_fail_1').map((e) => `${e.attempt}:${e.outcome}`)).toEqual([
      '1:failed',
      '2:failed',
    ]);
    const human = await cli(['failed', 'list']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^EVENT ID\s+TYPE\s+ATTEMPTS\s+FAILED AT\s+LAST ERROR$/m);
    expect(human.stdout).toMatch(
      /^evt_fail_1\s+resource\.updated\s+2\s+\S+\s+payment provider rejected evt_fail_1 \(attempt 2\)$/m,
    );
  }, 40_000);

  it("failed show prints the payload and each attempt's error", async () => {
    const human = await cli(['failed', 'show', 'evt_fail_1']);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^state\s+failed$/m);
    expect(human.stdout).toMatch(/^attempts\s+2 of 2$/m);
    expect(human.stdout).toContain('"fail": true');
    expect(human.stdout).toContain('"id": "evt_fail_1"');
    expect(human.stdout).toContain(
      'attempt 1: Error: payment provider rejected evt_fail_1 (attempt 1)',
    );
    expect(human.stdout).toContain(
      'attempt 2: Error: payment provider rejected evt_fail_1 (attempt 2)',
    );
    expect(human.stdout).toContain('operators-handlers.mjs');
    const json = await cli(['failed', 'show', 'evt_fail_1', '--json']);
    const detail = JSON.parse(json.stdout) as {
      payload: { id: string; type: string; data: unknown };
      failures: { attempt: number; error: string; stack: string }[];
    };
    expect(detail.payload).toMatchObject({
      id: 'evt_fail_1',
      type: 'resource.updated',
      data: { fail: true },
    });
    expect(detail.failures.map((f) => f.attempt)).toEqual([1, 2]);
    for (const failure of detail.failures) expect(failure.stack).toMatch(/\n\s+at /);
  }, 30_000);

  it('failed retry runs the event again with a fresh budget, and completes it once fixed', async () => {
    const retried = await cli(['failed', 'retry', 'evt_fail_1']);
    expect(retried.code, retried.stderr).toBe(0);
    expect(retried.stdout).toBe(
      'retried evt_fail_1: back in the queue with a fresh budget of 2 attempts\n',
    );
    // The whole budget again: attempts 1 and 2, not a lone third attempt.
    await waitFor(() => effects('evt_fail_1').length === 4, { timeoutMs: 20_000 });
    await waitFor(async () => (await direct.zscore(`${KEY}:failed`, 'evt-evt_fail_1')) !== null);
    expect(effects('evt_fail_1').map((e) => `${e.attempt}:${e.outcome}`)).toEqual([
      '1:failed',
      '2:failed',
      '1:failed',
      '2:failed',
    ]);
    // The operator fixes the cause, then retries: it completes.
    appendFileSync(fixedFile, 'evt_fail_1\n');
    expect((await cli(['failed', 'retry', 'evt_fail_1'])).code).toBe(0);
    await waitFor(() => effects('evt_fail_1').some((e) => e.outcome === 'ok'), {
      timeoutMs: 20_000,
    });
    expect(effects('evt_fail_1').at(-1)).toMatchObject({ attempt: 1, outcome: 'ok' });
    expect((await failedList()).events.map((e) => e.eventId)).not.toContain('evt_fail_1');
    // Not failed any more: a second retry does nothing and says so.
    await waitFor(async () =>
      (await cli(['failed', 'show', 'evt_fail_1'])).stdout.includes('completed'),
    );
    const again = await cli(['failed', 'retry', 'evt_fail_1']);
    expect(again.code).toBe(1);
    expectOneLine(again, /^error: event evt_fail_1 is completed, not failed: nothing done$/m);
  }, 60_000);

  it('failed remove deletes a failed event', async () => {
    await sendFailing('evt_fail_2');
    const removed = await cli(['failed', 'remove', 'evt_fail_2']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toBe('removed evt_fail_2\n');
    expect(await direct.exists(`${KEY}:evt-evt_fail_2`)).toBe(0);
    expect(await direct.zscore(`${KEY}:failed`, 'evt-evt_fail_2')).toBeNull();
    const shown = await cli(['failed', 'show', 'evt_fail_2']);
    expect(shown.code).toBe(1);
    expectOneLine(shown, /^error: no job for event evt_fail_2 /);
  }, 40_000);

  it('stats counts match the queue in Redis', async () => {
    await sendFailing('evt_fail_3');
    await sendFailing('evt_fail_4');
    // Quiet queue: nothing waiting or running, so the numbers cannot move under us.
    await waitFor(
      async () =>
        (await direct.llen(`${KEY}:wait`)) === 0 && (await direct.llen(`${KEY}:active`)) === 0,
    );
    const result = await cli(['stats', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const stats = JSON.parse(result.stdout) as {
      counts: Record<string, number>;
      oldestWaitingSeconds: number | null;
    };
    expect(stats.counts.failed).toBe(await direct.zcard(`${KEY}:failed`));
    expect(stats.counts.completed).toBe(await direct.zcard(`${KEY}:completed`));
    expect(stats.counts.waiting).toBe(await direct.llen(`${KEY}:wait`));
    expect(stats.counts.delayed).toBe(await direct.zcard(`${KEY}:delayed`));
    expect(stats.counts.failed).toBe(2);
    // evt_ok_1, five batch events and the fixed evt_fail_1.
    expect(stats.counts.completed).toBe(7);
    expect(stats.oldestWaitingSeconds).toBeNull();
    expect((await failedList()).total).toBe(stats.counts.failed);
    const human = await cli(['stats']);
    expect(human.stdout).toMatch(/^failed\s+2$/m);
    expect(human.stdout).toMatch(/^completed\s+7$/m);
    expect(human.stdout).toMatch(/^oldest waiting\s+-$/m);
  }, 60_000);

  it('retry --all and remove --all need --yes without a terminal, then act on every failed event', async () => {
    const refused = await cli(['failed', 'retry', '--all']);
    expect(refused.code).toBe(2);
    expectOneLine(refused, /^error: refusing to retry all 2 failed events without --yes/);
    const retried = await cli(['failed', 'retry', '--all', '--yes']);
    expect(retried.code, retried.stderr).toBe(0);
    expect(retried.stdout).toBe('retried 2 of 2 failed events\n');
    await waitFor(() => effects('evt_fail_4').length === 4, { timeoutMs: 20_000 });
    await waitFor(async () => (await direct.zcard(`${KEY}:failed`)) === 2, { timeoutMs: 20_000 });

    expect((await cli(['failed', 'remove', '--all'])).code).toBe(2);
    const removed = await cli(['failed', 'remove', '--all', '--yes']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toBe('removed 2 of 2 failed events\n');
    expect(await direct.zcard(`${KEY}:failed`)).toBe(0);
    expect((await cli(['failed', 'list'])).stdout).toBe('no failed events\n');
  }, 60_000);

  it('bad input ends with one clear line and a non-zero exit, never a stack trace', async () => {
    const closedPort = await freePort();
    const cases: [string[], Record<string, string | undefined>, number, RegExp][] = [
      [['trigger', 'resource.created', '--data', '{not json'], {}, 2, /--data.*is not valid JSON/],
      [['failed', 'show', 'evt_nope'], {}, 1, /^error: no job for event evt_nope /],
      [['failed', 'retry', 'evt_nope'], {}, 1, /^error: no job for event evt_nope /],
      [['failed', 'remove', 'evt_nope'], {}, 1, /^error: no job for event evt_nope /],
      [
        ['failed', 'list'],
        { REDIS_URL: `redis://127.0.0.1:${closedPort}` },
        1,
        new RegExp(`^error: Redis unreachable at 127.0.0.1:${closedPort} \\(REDIS_URL\\)`),
      ],
      [['stats'], { QUEUE_SHARDS: 'many' }, 2, /QUEUE_SHARDS/],
      [['failed', 'frob'], {}, 2, /unknown command 'frob'/],
      [
        ['trigger', 'resource.created', '--url', `http://127.0.0.1:${closedPort}/webhooks/groq`],
        {},
        1,
        /could not reach .*ECONNREFUSED/,
      ],
    ];
    for (const [args, env, code, pattern] of cases) {
      const result = await cli(args, env);
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(code);
      expectOneLine(result, pattern);
    }
    // A wrong secret: the ingest's 401 is printed and the exit code says it failed.
    const wrong = await cli(['trigger', 'resource.created', '--secret', 'not-the-secret']);
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toMatch(/ 401 \{"error":"Invalid signature","code":"invalid_signature"\}/);
  }, 60_000);
});
