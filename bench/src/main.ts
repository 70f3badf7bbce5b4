import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  closeRedis,
  createRedis,
  jobIdFor,
  openQueue,
  type RedisClient,
} from '@groq-webhooks/queue';
import { sign } from '@groq-webhooks/signature';
import {
  freePort,
  startPostgres,
  startRedis,
  type TestRedis,
  waitFor,
} from '@groq-webhooks/testing';
import autocannon from 'autocannon';
import { benchJob } from './jobs.js';
import { runMemory } from './memory.js';
import { cpuMicrosPer, cpuMillis, descendantsCpuMillis } from './proc-stat.js';
import { ENTRY, machine, ROOT, SECRET, spawnNode, stop } from './processes.js';
import { runScale } from './scale.js';
import {
  chooseVariants,
  DEFAULT_VARIANT,
  previousVariants,
  rotated,
  type Variant,
} from './variants.js';

// pnpm bench: the real ingest vs a bare Hono server, and the real worker vs a bare BullMQ
// worker, alternating on the same machine in one run, reported as ratios.

const USAGE = `Usage: pnpm bench [-- options]   (or: node bench/dist/main.js [options])

  --rounds <n>                rounds (default 5; --quick 1)
  --duration <s>              seconds of each ingest window (default 10; --quick 2)
  --connections <n>           ingest load connections (default 50)
  --worker-concurrency <list> worker concurrencies, comma-separated (default 1,10,50)
  --variants <list>           configurations to measure beside the default (default: all)
  --compare-with <dirs>       other built checkouts to run side by side (previous[-<folder>])
  --one-resource <n>          events of the one-resource ordering run (0 skips it)
  --paired                    each variant at the same time as the default (ingest and worker),
                              and the default beside itself (the control), instead of one
                              after another
  --skip-ingest, --skip-worker
  --quick                     a short smoke run
  --memory                    the Redis memory benchmark instead (bytes per remembered event)
  --scale                     the scale-out benchmark instead
  --cpu-prof <dir>            V8 CPU profiles of every server and worker process
  --out <dir>                 where the report goes (default reports/)
  --help`;

function parseArgsOrExit<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}\n`);
    process.exit(2);
  }
}

const { values: args } = parseArgsOrExit(() =>
  parseArgs({
    // `pnpm bench -- --scale` hands the `--` through.
    args: process.argv.slice(2).filter((arg) => arg !== '--'),
    options: {
      help: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      // The scale-out benchmark instead (bench/src/scale.ts).
      scale: { type: 'boolean', default: false },
      // The Redis memory benchmark instead (bench/src/memory.ts).
      memory: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      connections: { type: 'string', default: '50' },
      'skip-ingest': { type: 'boolean', default: false },
      // The ingest's variants measured at the same time as the default (pairedRound).
      paired: { type: 'boolean', default: false },
      'skip-worker': { type: 'boolean', default: false },
      // Worker concurrencies to measure, comma-separated (default 1,10,50; --quick: 10).
      'worker-concurrency': { type: 'string' },
      out: { type: 'string', default: join(ROOT, 'reports') },
      // Writes a V8 CPU profile of every server/worker process into this directory.
      'cpu-prof': { type: 'string' },
      // Configurations of the real ingest and worker to measure, comma-separated (default: all).
      variants: { type: 'string' },
      // Events of the one-resource ordering run (0 skips it; default 10,000, --quick 500).
      'one-resource': { type: 'string' },
      // Other checkouts (built), comma-separated, whose ingest and worker run beside these: one
      // as variant `previous`, several as `previous-<folder name>`.
      'compare-with': { type: 'string' },
    },
  }),
);
if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const variants = chooseVariants(args.variants);
if (args['compare-with'] !== undefined) variants.push(...previousVariants(args['compare-with']));
const sideVariants = (side: 'ingest' | 'worker') =>
  variants.filter((variant) => variant.sides.includes(side));
const quick = args.quick === true;
if (args.scale) {
  await runScale({
    quick,
    out: args.out ?? join(ROOT, 'reports'),
    ...(args.rounds === undefined ? {} : { rounds: Number(args.rounds) }),
    ...(args.duration === undefined ? {} : { durationSeconds: Number(args.duration) }),
    connections: Number(args.connections),
  });
  process.exit(0);
}
if (args.memory) {
  await runMemory({
    quick,
    out: args.out ?? join(ROOT, 'reports'),
    connections: Number(args.connections),
  });
  process.exit();
}
// Five rounds by default: an odd count has a median round, and on a shared machine single rounds
// swing by ±10 %.
const rounds = Number(args.rounds ?? (quick ? 1 : 5));
const durationSeconds = Number(args.duration ?? (quick ? 2 : 10));
const warmupSeconds = quick ? 1 : 3;
const connections = Number(args.connections);
const workerConcurrencies =
  args['worker-concurrency'] !== undefined
    ? args['worker-concurrency'].split(',').map(Number)
    : quick
      ? [10]
      : [1, 10, 50];
const workerJobs = (concurrency: number) => (quick ? 400 : concurrency === 1 ? 4000 : 20_000);

interface LoadResult {
  /** `baseline`, or the variant of the real ingest. */
  kind: string;
  round: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  requests: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  cpuMicrosPerRequest: number | undefined;
  /** redis-server CPU per request: it shares the same cores, so it is part of the cost. */
  redisCpuMicrosPerRequest?: number | undefined;
  ackedWithoutJob?: number;
}

interface WorkerResult {
  /** `bare`, or the variant of the real worker. */
  kind: string;
  concurrency: number;
  round: number;
  jobs: number;
  jobsPerSecond: number;
  failed: number;
  /** CPU of the worker process and of redis-server per job, over the measured 80 %. */
  cpuMicrosPerJob?: number | undefined;
  redisCpuMicrosPerJob?: number | undefined;
  /** History on: its archiver process's CPU per job over the measured 80 % (not in the above). */
  archiverCpuMicrosPerJob?: number | undefined;
  /**
   * History on: the archiver's and PostgreSQL's CPU per job over the whole run, from the
   * worker's start until every record was archived.
   */
  archiveCpuMicrosPerJob?: number | undefined;
  /** History on: seconds from the last job handled until the last record was archived. */
  archiveLagSeconds?: number | undefined;
}

const log = (line: string) => process.stderr.write(`${line}\n`);

/** Signed, distinct events: nothing dedupes, so every 200 is a real enqueue. */
function makeEvents(prefix: string, count: number) {
  const created = new Date().toISOString();
  return Array.from({ length: count }, (_, i) => {
    const id = `evt_${prefix}_${i}`;
    const body = JSON.stringify({
      id,
      type: 'resource.created',
      data: { id: `res_${i}`, object: 'batch', attributes: { status: 'completed', n: i } },
      created,
    });
    return {
      id,
      body,
      headers: { 'content-type': 'application/json', ...sign({ secret: SECRET, body }) },
    };
  });
}

type Event = ReturnType<typeof makeEvents>[number];

function startServer(entry: string, env: Record<string, string>): ChildProcess {
  const profile = args['cpu-prof'];
  return spawnNode(
    entry,
    env,
    profile === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profile}`],
  );
}

async function drive(url: string, events: Event[], seconds: number, acked: string[] | undefined) {
  let next = 0;
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    method: 'POST',
    requests: [
      {
        setupRequest: (request, context) => {
          const event = events[next++ % events.length] as Event;
          (context as { id?: string }).id = event.id;
          return { ...request, method: 'POST', body: event.body, headers: event.headers };
        },
        onResponse: (status, _body, context) => {
          const id = (context as { id?: string }).id;
          if (acked && status === 200 && id) acked.push(id);
        },
      },
    ],
  });
  // Only the ingest must see every event once (a repeat would be a duplicate, not an enqueue).
  // The baseline never reads a body: past the pool it gets the same requests again, unchanged.
  if (acked !== undefined && next > events.length)
    throw new Error(`ran out of distinct events (${events.length}); raise the pool`);
  return result;
}

/** A server under load: the baseline or a variant's ingest, with its own queue and events. */
interface LoadTarget {
  kind: string;
  round: number;
  queueName: string;
  child: ChildProcess;
  /** Its webhook URL. */
  url: string;
  warmup: Event[];
  measured: Event[];
  /** Ids answered 200 (the real ingest only: each must have its job). */
  acked: string[] | undefined;
}

/** Starts `variant`'s ingest (the baseline when undefined) and waits until it answers. */
async function startTarget(
  variant: Variant | undefined,
  round: number,
  redis: TestRedis,
  tag = '',
): Promise<LoadTarget> {
  const kind = variant?.name ?? 'baseline';
  const queueName = `bench-ingest-${kind}${tag}-r${round}`;
  const port = await freePort();
  const child =
    variant === undefined
      ? startServer(ENTRY.baseline, { PORT: String(port) })
      : startServer(variant.entries?.ingest ?? ENTRY.ingest, {
          ...variantEnv(variant),
          PORT: String(port),
          HOST: '127.0.0.1',
          REDIS_URL: redis.url,
          GROQ_WEBHOOK_SECRET: SECRET,
          QUEUE_NAME: queueName,
        });
  try {
    const base = `http://127.0.0.1:${port}`;
    const probe = kind === 'baseline' ? `${base}/webhooks/groq` : `${base}/readyz`;
    await waitFor(
      async () => (await fetch(probe, { method: kind === 'baseline' ? 'POST' : 'GET' })).ok,
      {
        timeoutMs: 20_000,
        description: `${kind} to answer`,
      },
    );
  } catch (error) {
    await stop(child);
    throw error;
  }
  // Enough distinct events for 45k req/s in each phase: the ingest peaks near 22k here, the
  // baseline near 44k (it may go past the pool: see drive).
  const warmupCount = Math.ceil(45_000 * warmupSeconds);
  const pool = warmupCount + Math.ceil(45_000 * durationSeconds);
  const events = makeEvents(`${kind}${tag}_r${round}_${Date.now()}`, pool);
  return {
    kind,
    round,
    queueName,
    child,
    url: `http://127.0.0.1:${port}/webhooks/groq`,
    warmup: events.slice(0, warmupCount),
    measured: events.slice(warmupCount),
    acked: variant === undefined ? undefined : [],
  };
}

/**
 * The target's measured window: its req/s, latency and CPU per request; with `redisCpu`, also
 * Redis's (only when the target is the one load on it).
 */
async function measureTarget(
  target: LoadTarget,
  redis: TestRedis,
  admin: RedisClient,
  redisCpu: boolean,
): Promise<LoadResult> {
  const cpuBefore = cpuMillis(target.child.pid ?? -1);
  const redisCpuBefore = cpuMillis(redis.process.pid);
  const result = await drive(target.url, target.measured, durationSeconds, target.acked);
  const cpuAfter = cpuMillis(target.child.pid ?? -1);
  const redisCpuAfter = cpuMillis(redis.process.pid);
  const requests = result['2xx'] + result.non2xx;
  const outcome: LoadResult = {
    kind: target.kind,
    round: target.round,
    requestsPerSecond: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    maxMs: result.latency.max,
    requests,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    cpuMicrosPerRequest: cpuMicrosPer(cpuBefore, cpuAfter, requests),
    redisCpuMicrosPerRequest: redisCpu
      ? cpuMicrosPer(redisCpuBefore, redisCpuAfter, requests)
      : undefined,
  };
  if (target.acked) {
    outcome.ackedWithoutJob = await missingJobs(admin, target.queueName, target.acked);
  }
  log(
    `${target.kind} round ${target.round}: ${outcome.requestsPerSecond} req/s, p99 ${outcome.p99Ms} ms`,
  );
  return outcome;
}

async function loadRound(
  variant: Variant | undefined,
  round: number,
  redis: TestRedis,
  admin: RedisClient,
): Promise<LoadResult> {
  const target = await startTarget(variant, round, redis);
  try {
    await drive(target.url, target.warmup, warmupSeconds, target.acked);
    return await measureTarget(target, redis, admin, true);
  } finally {
    await stop(target.child);
    await emptied(admin);
  }
}

/** One round of `--paired`: the default variant's ingest and `variant`'s, at the same time. */
interface PairedResult {
  variant: string;
  round: number;
  reference: LoadResult;
  other: LoadResult;
  /** The reference was started and driven first (odd rounds). */
  referenceFirst: boolean;
}

/**
 * The two sides of a `--paired` round in the order they start (and are driven) in, with their
 * tags (`-a` the reference): the reference first in odd rounds, the variant first in even ones,
 * so that the edge of either place cancels over the rounds.
 */
function pairOrder(reference: Variant, variant: Variant, round: number) {
  const referenceFirst = round % 2 === 1;
  const a = [reference, '-a'] as const;
  const b = [variant, '-b'] as const;
  return { referenceFirst, sides: referenceFirst ? [a, b] : [b, a] };
}

/**
 * `--paired`: the default ingest and `variant`'s run at the same time, each on its own queue with
 * its own load, so both see the same machine in the same seconds (a shared VM slows down and
 * recovers within a round: alternating runs only average that out). They share the cores fairly,
 * so the ratio of their req/s is the ratio of their cost per request. The default beside itself
 * is the control: how far from 1 two equal servers land.
 */
async function pairedRound(
  reference: Variant,
  variant: Variant,
  round: number,
  redis: TestRedis,
  admin: RedisClient,
): Promise<PairedResult> {
  const targets: LoadTarget[] = [];
  const { referenceFirst, sides } = pairOrder(reference, variant, round);
  try {
    for (const [side, tag] of sides) {
      targets.push(await startTarget(side, round, redis, tag));
    }
    await Promise.all(
      targets.map((target) => drive(target.url, target.warmup, warmupSeconds, target.acked)),
    );
    const results = await Promise.all(
      targets.map((target) => measureTarget(target, redis, admin, false)),
    );
    const [first, second] = referenceFirst ? results : [...results].reverse();
    if (first === undefined || second === undefined) throw new Error('a paired run is missing');
    return { variant: variant.name, round, reference: first, other: second, referenceFirst };
  } finally {
    await Promise.all(targets.map((target) => stop(target.child)));
    await emptied(admin);
  }
}

/**
 * Every run starts on an empty Redis (the bench's own): what earlier runs left (their jobs, the
 * events they remembered) would make the later runs of a round slower than the first.
 */
async function emptied(admin: RedisClient): Promise<void> {
  await admin.flushall();
}

/** Every acknowledged id must have its job in Redis. */
async function missingJobs(
  admin: RedisClient,
  queueName: string,
  acked: string[],
): Promise<number> {
  let missing = 0;
  for (let i = 0; i < acked.length; i += 1000) {
    const pipeline = admin.pipeline();
    for (const id of acked.slice(i, i + 1000))
      pipeline.exists(`{groq}:${queueName}:${jobIdFor(id)}`);
    for (const [, exists] of (await pipeline.exec()) ?? []) if (exists !== 1) missing++;
  }
  return missing;
}

/**
 * A queue holding `jobs` bench events (one `created` for all, spread over `resources`
 * resources), added 1,000 at a time.
 */
async function filledQueue(
  admin: RedisClient,
  queueName: string,
  jobs: number,
  resources?: number,
  tracesSampled?: number,
  paused = false,
): Promise<ReturnType<typeof openQueue>> {
  const queue = openQueue(
    admin,
    { index: 0, name: queueName, prefix: '{groq}' },
    { jobAttempts: 8, backoffBaseMs: 1000 },
  );
  if (paused) await queue.pause();
  const created = new Date().toISOString();
  for (let i = 0; i < jobs; i += 1000) {
    await queue.addBulk(
      Array.from({ length: Math.min(1000, jobs - i) }, (_, j) =>
        benchJob(
          `evt_${queueName}_${Date.now()}_${i + j}`,
          i + j,
          created,
          resources,
          tracesSampled,
        ),
      ),
    );
  }
  return queue;
}

/** The environment of `variant`'s worker (the bare one when undefined) on `queueName`. */
function workerEnv(
  variant: Variant | undefined,
  queueName: string,
  concurrency: number,
  redis: TestRedis,
): Record<string, string> {
  return {
    REDIS_URL: redis.url,
    QUEUE_NAME: queueName,
    WORKER_CONCURRENCY: String(concurrency),
    WORKER_METRICS_PORT: '0',
    HANDLERS_MODULE: ENTRY.trivialHandlers,
    ...(variant === undefined ? {} : variantEnv(variant)),
  };
}

function workerEntry(variant: Variant | undefined): string {
  return variant === undefined ? ENTRY.bareWorker : (variant.entries?.worker ?? ENTRY.worker);
}

/** Jobs of the queue not yet handled. */
async function jobsLeft(queue: ReturnType<typeof openQueue>): Promise<number> {
  const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
  return Object.values(counts).reduce((sum, count) => sum + count, 0);
}

/** One round of `--paired` on the worker side: two workers at once, each on its own queue. */
interface PairedWorkerResult {
  variant: string;
  concurrency: number;
  round: number;
  /** Jobs/s of each over the same window: from both past 10 % of their jobs to one past 90 %. */
  referenceJobsPerSecond: number;
  otherJobsPerSecond: number;
  /** CPU per job of each worker process over that window. */
  referenceCpuMicrosPerJob: number | undefined;
  otherCpuMicrosPerJob: number | undefined;
  failed: number;
  referenceFirst: boolean;
}

/**
 * `--paired`, worker side: the default worker and `variant`'s run at the same time on queues
 * filled alike; their rates are taken over the same seconds (once both have handled 10 % of their
 * jobs, until one has handled 90 %), so that neither runs alone at the end.
 */
async function pairedWorkerRound(
  reference: Variant,
  variant: Variant,
  concurrency: number,
  round: number,
  redis: TestRedis,
  admin: RedisClient,
): Promise<PairedWorkerResult> {
  // --quick's 400 jobs are over before a window opens: at least 4,000.
  const jobs = Math.max(4000, workerJobs(concurrency));
  const { referenceFirst, sides } = pairOrder(reference, variant, round);
  const running: { queue: ReturnType<typeof openQueue>; child: ChildProcess }[] = [];
  try {
    // Both queues are filled while paused, and resumed together once both workers are up: they
    // start at the same moment, whatever their start-up takes.
    for (const [side, tag] of sides) {
      const queueName = `bench-${side.name}${tag}-c${concurrency}-r${round}`;
      const queue = await filledQueue(
        admin,
        queueName,
        jobs,
        undefined,
        side.jobTracesSampled,
        true,
      );
      running.push({
        queue,
        child: startServer(workerEntry(side), workerEnv(side, queueName, concurrency, redis)),
      });
    }
    await waitFor(
      async () =>
        (await Promise.all(running.map(({ queue }) => queue.getWorkersCount()))).every(
          (count) => count > 0,
        ),
      { timeoutMs: 30_000, intervalMs: 20, description: 'both workers connected' },
    );
    await Promise.all(running.map(({ queue }) => queue.resume()));
    const left = () => Promise.all(running.map(({ queue }) => jobsLeft(queue)));
    const cpu = () => running.map(({ child }) => cpuMillis(child.pid ?? -1));
    await waitFor(async () => (await left()).every((n) => n <= jobs * 0.9), {
      timeoutMs: 120_000,
      intervalMs: 10,
    });
    const started = performance.now();
    const leftBefore = await left();
    const cpuBefore = cpu();
    const leftAfter = await waitFor(
      async () => {
        const now = await left();
        return now.some((n) => n <= jobs * 0.1) ? now : undefined;
      },
      { timeoutMs: 300_000, intervalMs: 10 },
    );
    const seconds = (performance.now() - started) / 1000;
    const cpuAfter = cpu();
    await waitFor(async () => (await left()).every((n) => n === 0), {
      timeoutMs: 120_000,
      intervalMs: 20,
    });
    const rates = running.map((_, i) => ((leftBefore[i] ?? 0) - (leftAfter[i] ?? 0)) / seconds);
    const cpuPerJob = running.map((_, i) =>
      cpuMicrosPer(cpuBefore[i], cpuAfter[i], (leftBefore[i] ?? 0) - (leftAfter[i] ?? 0)),
    );
    let failed = 0;
    for (const { queue } of running) failed += await queue.getFailedCount();
    const [r, o] = referenceFirst ? [0, 1] : [1, 0];
    const result: PairedWorkerResult = {
      variant: variant.name,
      concurrency,
      round,
      referenceJobsPerSecond: Math.round(rates[r] ?? 0),
      otherJobsPerSecond: Math.round(rates[o] ?? 0),
      referenceCpuMicrosPerJob: cpuPerJob[r],
      otherCpuMicrosPerJob: cpuPerJob[o],
      failed,
      referenceFirst,
    };
    log(
      `paired worker c=${concurrency} round ${round}: ${reference.name} ${result.referenceJobsPerSecond}, ${variant.name} ${result.otherJobsPerSecond} jobs/s`,
    );
    return result;
  } finally {
    await Promise.all(running.map(({ child }) => stop(child)));
    for (const { queue } of running) await queue.close();
    await emptied(admin);
  }
}

async function workerRound(
  variant: Variant | undefined,
  concurrency: number,
  round: number,
  redis: TestRedis,
  admin: RedisClient,
): Promise<WorkerResult> {
  const kind = variant?.name ?? 'bare';
  const queueName = `bench-${kind}-c${concurrency}-r${round}`;
  const jobs = workerJobs(concurrency);
  const queue = await filledQueue(admin, queueName, jobs, undefined, variant?.jobTracesSampled);
  const env = workerEnv(variant, queueName, concurrency, redis);
  const archiving = variant?.needsPostgres === true;
  const pgCpu = () =>
    postgres?.pid === undefined
      ? undefined
      : (cpuMillis(postgres.pid) ?? 0) + descendantsCpuMillis(postgres.pid);
  const pgCpuBefore = archiving ? pgCpu() : undefined;
  const child = startServer(workerEntry(variant), env);
  try {
    const remaining = () => jobsLeft(queue);
    // Measure the middle 80 % of the jobs: no process start-up, no tail.
    await waitFor(async () => (await remaining()) <= jobs * 0.9, {
      timeoutMs: 120_000,
      intervalMs: 10,
    });
    const started = performance.now();
    const cpuBefore = cpuMillis(child.pid ?? -1);
    const redisCpuBefore = cpuMillis(redis.process.pid);
    const archiverCpuBefore = archiving ? descendantsCpuMillis(child.pid ?? -1) : undefined;
    await waitFor(async () => (await remaining()) <= jobs * 0.1, {
      timeoutMs: 300_000,
      intervalMs: 10,
    });
    const seconds = (performance.now() - started) / 1000;
    const perJob = (before: number | undefined, after: number | undefined) =>
      cpuMicrosPer(before, after, jobs * 0.8);
    const cpuMicrosPerJob = perJob(cpuBefore, cpuMillis(child.pid ?? -1));
    const redisCpuMicrosPerJob = perJob(redisCpuBefore, cpuMillis(redis.process.pid));
    const archiverCpuMicrosPerJob = archiving
      ? perJob(archiverCpuBefore, descendantsCpuMillis(child.pid ?? -1))
      : undefined;
    await waitFor(async () => (await remaining()) === 0, { timeoutMs: 120_000, intervalMs: 20 });
    let archiveCpuMicrosPerJob: number | undefined;
    let archiveLagSeconds: number | undefined;
    if (archiving) {
      // The history may lag behind at full load (its archiver runs at a lower CPU priority):
      // how long until it caught up, and what archiving every job cost in all.
      const drained = performance.now();
      const stream = `{groq}:${queueName}:history`;
      await waitFor(async () => (await admin.xlen(stream)) === 0, {
        timeoutMs: 600_000,
        intervalMs: 20,
        description: 'history archived',
      });
      archiveLagSeconds = Math.round((performance.now() - drained) / 100) / 10;
      const pgCpuAfter = pgCpu();
      if (pgCpuBefore !== undefined && pgCpuAfter !== undefined) {
        const total = descendantsCpuMillis(child.pid ?? -1) + pgCpuAfter - pgCpuBefore;
        archiveCpuMicrosPerJob = Math.round((total * 1000) / jobs);
      }
    }
    const failed = await queue.getFailedCount();
    const result = {
      kind,
      concurrency,
      round,
      jobs,
      jobsPerSecond: Math.round((jobs * 0.8) / seconds),
      failed,
      cpuMicrosPerJob,
      redisCpuMicrosPerJob,
      archiverCpuMicrosPerJob,
      archiveCpuMicrosPerJob,
      archiveLagSeconds,
    };
    log(`${kind} worker c=${concurrency} round ${round}: ${result.jobsPerSecond} jobs/s`);
    return result;
  } finally {
    await stop(child);
    await queue.close();
    await emptied(admin);
  }
}

/** What the one-resource run measured: every event about one resource. */
interface OneResourceResult {
  jobs: number;
  concurrency: number;
  seconds: number;
  eventsPerSecond: number;
  /** Most handlers that ever ran at once in the worker: 1 when the events took turns. */
  mostRunning: number;
  failed: number;
}

/**
 * The worst case of per-resource ordering: `jobs` events all about one resource, one worker at
 * concurrency `concurrency`. They must run one at a time, and the run must end (no livelock).
 */
async function oneResourceRun(
  jobs: number,
  concurrency: number,
  redis: TestRedis,
  admin: RedisClient,
): Promise<OneResourceResult> {
  const queueName = `bench-one-resource-c${concurrency}`;
  const queue = await filledQueue(admin, queueName, jobs, 1);
  const mostFile = join(args.out ?? 'reports', `.one-resource-most-${process.pid}`);
  mkdirSync(args.out ?? 'reports', { recursive: true });
  const started = performance.now();
  const child = startServer(ENTRY.worker, {
    REDIS_URL: redis.url,
    QUEUE_NAME: queueName,
    WORKER_CONCURRENCY: String(concurrency),
    WORKER_METRICS_PORT: '0',
    HANDLERS_MODULE: ENTRY.oneAtATimeHandlers,
    BENCH_MAX_RUNNING_FILE: mostFile,
  });
  try {
    await waitFor(
      async () => (await queue.getCompletedCount()) + (await queue.getFailedCount()) >= jobs,
      {
        timeoutMs: 600_000,
        intervalMs: 100,
        description: `${jobs} one-resource events handled`,
      },
    );
    const seconds = (performance.now() - started) / 1000;
    const failed = await queue.getFailedCount();
    await stop(child);
    const mostRunning = Number(readFileSync(mostFile, 'utf8'));
    rmSync(mostFile, { force: true });
    const result = {
      jobs,
      concurrency,
      seconds: Math.round(seconds * 10) / 10,
      eventsPerSecond: Math.round(jobs / seconds),
      mostRunning,
      failed,
    };
    log(
      `one resource: ${jobs} events in ${result.seconds} s (${result.eventsPerSecond}/s), most running ${mostRunning}`,
    );
    return result;
  } finally {
    await stop(child);
    await queue.close();
    await emptied(admin);
  }
}

/** The targets of the benchmark issue, as ratios in one run. */
const TARGETS = { ingestRatio: 0.5, ingestP99Ms: 15, workerRatio: 0.8, workerConcurrency: 50 };

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const upper = sorted[middle] ?? Number.NaN;
  return sorted.length % 2 === 1 ? upper : ((sorted[middle - 1] ?? Number.NaN) + upper) / 2;
}

/** One line per target: the median round against it, and every round beside it. */
function targetLines(load: LoadResult[], workers: WorkerResult[]): string[] {
  const lines: string[] = [];
  const met = (ok: boolean) => (ok ? 'met' : 'NOT met');
  const ingestRatios = ratiosByRound(load, DEFAULT_VARIANT);
  if (ingestRatios.length > 0) {
    const p99s = load.filter((r) => r.kind === DEFAULT_VARIANT).map((r) => r.p99Ms);
    const ratio = median(ingestRatios);
    const p99 = median(p99s);
    lines.push(
      `- Ingest ≥ ${TARGETS.ingestRatio.toFixed(2)}× baseline req/s with p99 ≤ ${TARGETS.ingestP99Ms} ms: median round ${ratio.toFixed(3)}×, p99 ${p99} ms — ${met(ratio >= TARGETS.ingestRatio && p99 <= TARGETS.ingestP99Ms)} (rounds ${ingestRatios.map((r) => r.toFixed(2)).join(', ')}; p99 ${p99s.join(', ')} ms)`,
    );
  }
  const workerRatios = workerRatiosByRound(workers, TARGETS.workerConcurrency, DEFAULT_VARIANT);
  if (workerRatios.length > 0) {
    const ratio = median(workerRatios);
    lines.push(
      `- Worker ≥ ${TARGETS.workerRatio.toFixed(2)}× bare BullMQ at concurrency ${TARGETS.workerConcurrency}: median round ${ratio.toFixed(3)}× — ${met(ratio >= TARGETS.workerRatio)} (rounds ${workerRatios.map((r) => r.toFixed(2)).join(', ')})`,
    );
  }
  return lines;
}

/** The bare and the variant's worker results of one concurrency and round. */
function workerPair(workers: WorkerResult[], concurrency: number, round: number, kind: string) {
  const find = (wanted: string) =>
    workers.find((w) => w.kind === wanted && w.concurrency === concurrency && w.round === round);
  return { bare: find('bare'), real: find(kind) };
}

function workerRatiosByRound(workers: WorkerResult[], concurrency: number, kind: string): number[] {
  const ratios: number[] = [];
  for (const round of new Set(workers.map((w) => w.round))) {
    const { bare, real } = workerPair(workers, concurrency, round, kind);
    if (bare && real) ratios.push(real.jobsPerSecond / bare.jobsPerSecond);
  }
  return ratios;
}

function spread(values: number[]): string {
  const min = Math.min(...values);
  const max = Math.max(...values);
  return `${min.toFixed(2)}–${max.toFixed(2)}`;
}

function markdown(report: {
  date: string;
  machine: ReturnType<typeof machine>;
  settings: Record<string, unknown>;
  variants: readonly Variant[];
  load: LoadResult[];
  paired: PairedResult[];
  pairedWorkers: PairedWorkerResult[];
  workers: WorkerResult[];
  oneResource: OneResourceResult | undefined;
}): string {
  const lines = [
    `# groq-webhooks benchmark — ${report.date}`,
    '',
    `Machine: ${report.machine.cpu}, ${report.machine.memoryGiB} GiB, Node ${report.machine.node}, ${report.machine.redis}`,
    `Settings: ${JSON.stringify(report.settings)}`,
    '',
    'Variants of the real ingest and worker, each measured in every round beside the baseline:',
    '',
    ...report.variants.map((variant) => `- \`${variant.name}\`: ${variant.description}`),
    '',
  ];
  if (report.load.length > 0) {
    lines.push(
      '## Ingest vs bare Hono (same load generator, 50 connections, distinct signed events)',
      '',
      '| round | server | req/s | p50 ms | p99 ms | max ms | non-2xx | errors | CPU µs/req | Redis CPU µs/req | 200 without job |',
      '|---|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const r of report.load) {
      lines.push(
        `| ${r.round} | ${r.kind} | ${r.requestsPerSecond} | ${r.p50Ms} | ${r.p99Ms} | ${r.maxMs} | ${r.non2xx} | ${r.errors} | ${r.cpuMicrosPerRequest ?? 'n/a'} | ${r.redisCpuMicrosPerRequest ?? 'n/a'} | ${r.ackedWithoutJob ?? '—'} |`,
      );
    }
    lines.push('');
    for (const variant of kindsOf(report.load, 'baseline')) {
      const ratios = ratiosByRound(report.load, variant);
      lines.push(
        `Ratio ingest (${variant}) / baseline req/s per round: ${ratios.map((r) => r.toFixed(2)).join(', ')} (median ${median(ratios).toFixed(3)}, spread ${spread(ratios)})`,
        '',
      );
    }
  }
  if (report.paired.length > 0) lines.push(...pairedLines(report.paired));
  if (report.pairedWorkers.length > 0) lines.push(...pairedWorkerLines(report.pairedWorkers));
  if (report.workers.length > 0) {
    const kinds = kindsOf(report.workers, 'bare');
    lines.push(
      '## Worker vs bare BullMQ worker (trivial handler)',
      '',
      `| concurrency | round | bare jobs/s | ${kinds.map((k) => `${k} jobs/s (ratio)`).join(' | ')} | CPU µs/job bare / ${kinds.join(' / ')} | Redis CPU µs/job bare / ${kinds.join(' / ')} |`,
      `|---|---|---|${kinds.map(() => '---|').join('')}---|---|`,
    );
    const spreads: string[] = [];
    for (const c of new Set(report.workers.map((w) => w.concurrency))) {
      for (const round of new Set(report.workers.map((w) => w.round))) {
        const bare = workerPair(report.workers, c, round, 'bare').bare;
        if (bare === undefined) continue;
        const reals = kinds.map((kind) => workerPair(report.workers, c, round, kind).real);
        lines.push(
          `| ${c} | ${round} | ${bare.jobsPerSecond} | ${reals.map((real) => (real ? `${real.jobsPerSecond} (${(real.jobsPerSecond / bare.jobsPerSecond).toFixed(2)})` : '—')).join(' | ')} | ${[bare, ...reals].map((r) => r?.cpuMicrosPerJob ?? 'n/a').join(' / ')} | ${[bare, ...reals].map((r) => r?.redisCpuMicrosPerJob ?? 'n/a').join(' / ')} |`,
        );
      }
      for (const kind of kinds) {
        const ratios = workerRatiosByRound(report.workers, c, kind);
        if (ratios.length > 0) {
          spreads.push(`${kind} c=${c}: median ${median(ratios).toFixed(3)} (${spread(ratios)})`);
        }
      }
    }
    lines.push('', `Ratio worker / bare, median and spread over rounds: ${spreads.join('; ')}`, '');
    const archived = report.workers.filter((w) => w.archiveCpuMicrosPerJob !== undefined);
    if (archived.length > 0) {
      lines.push(
        "### The history's archiving (history on)",
        '',
        "The archiver is a process of its own at a lower CPU priority: its CPU is not in the worker's above. At full load it lags; this is when it caught up, and what archiving cost in all (archiver and PostgreSQL, from the worker's start until the last record was archived, per job).",
        '',
        '| variant | concurrency | round | archiver CPU µs/job in the window | archiver + PostgreSQL CPU µs/job, all | caught up, s after the last job |',
        '|---|---|---|---|---|---|',
        ...archived.map(
          (w) =>
            `| ${w.kind} | ${w.concurrency} | ${w.round} | ${w.archiverCpuMicrosPerJob ?? 'n/a'} | ${w.archiveCpuMicrosPerJob} | ${w.archiveLagSeconds} |`,
        ),
        '',
      );
    }
  }
  const one = report.oneResource;
  if (one !== undefined) {
    lines.push(
      '## Per-resource ordering, worst case: every event about one resource',
      '',
      `${one.jobs} events, one worker at concurrency ${one.concurrency}: done in ${one.seconds} s, ${one.eventsPerSecond} events/s; at most ${one.mostRunning} handler(s) running at once; ${one.failed} failed.`,
      '',
    );
  }
  const costs = costLines(report.load, report.workers);
  if (costs.length > 0) {
    lines.push(
      `## Cost of each variant against \`${DEFAULT_VARIANT}\` (same rounds)`,
      '',
      ...costs,
      '',
    );
  }
  const targets = targetLines(report.load, report.workers);
  if (targets.length > 0)
    lines.push('## Targets (median round, default variant)', '', ...targets, '');
  return lines.join('\n');
}

/** The `--paired` table, and per variant its per-round ratios to the default summed up. */
function pairedLines(pairs: PairedResult[]): string[] {
  const lines = [
    `## Ingest variants at the same time as \`${DEFAULT_VARIANT}\` (--paired)`,
    '',
    `Each round runs \`${DEFAULT_VARIANT}\` and the variant at once, each with its own load (${connections} connections) and queue; \`${DEFAULT_VARIANT}\` beside itself is the control.`,
    '',
    `| round | variant | ${DEFAULT_VARIANT} req/s | variant req/s | ratio | CPU µs/req ${DEFAULT_VARIANT} / variant | non-2xx | 200 without job |`,
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const { variant, round, reference, other } of pairs) {
    lines.push(
      `| ${round} | ${variant} | ${reference.requestsPerSecond} | ${other.requestsPerSecond} | ${(other.requestsPerSecond / reference.requestsPerSecond).toFixed(3)} | ${reference.cpuMicrosPerRequest ?? 'n/a'} / ${other.cpuMicrosPerRequest ?? 'n/a'} | ${reference.non2xx + other.non2xx} | ${(reference.ackedWithoutJob ?? 0) + (other.ackedWithoutJob ?? 0)} |`,
    );
  }
  lines.push('');
  for (const variant of new Set(pairs.map((pair) => pair.variant))) {
    const ratios = pairs
      .filter((pair) => pair.variant === variant)
      .map((pair) => pair.other.requestsPerSecond / pair.reference.requestsPerSecond);
    lines.push(pairedLine('ingest', variant, '', ratios));
  }
  lines.push('');
  return lines;
}

/**
 * A paired variant's ratios summed up: their geometric mean, in which the edge of starting second
 * (a few per cent, either way, on this kind of machine; the order alternates by round) cancels
 * over an even number of rounds, and their median.
 */
function pairedSummary(ratios: number[]): string {
  const mean = Math.exp(ratios.reduce((sum, r) => sum + Math.log(r), 0) / ratios.length);
  const note = ratios.length % 2 === 1 ? ', odd round count: the order does not quite cancel' : '';
  return `${mean.toFixed(3)}× (geometric mean${note}; median ${median(ratios).toFixed(3)}×)`;
}

/**
 * One variant's summary line under a `--paired` table (`where`: the worker's concurrency): the
 * control's when it is the default variant.
 */
function pairedLine(
  side: 'ingest' | 'worker',
  variant: string,
  where: string,
  ratios: number[],
): string {
  const what =
    variant === DEFAULT_VARIANT
      ? `control, \`${DEFAULT_VARIANT}\` beside itself`
      : `${side} \`${variant}\` beside \`${DEFAULT_VARIANT}\``;
  return `- ${what}${where}: ${pairedSummary(ratios)} (rounds ${ratios.map((r) => r.toFixed(3)).join(', ')})`;
}

/** The worker side of `--paired`, as {@link pairedLines}. */
function pairedWorkerLines(pairs: PairedWorkerResult[]): string[] {
  const lines = [
    `## Worker variants at the same time as \`${DEFAULT_VARIANT}\` (--paired)`,
    '',
    `Each round runs the \`${DEFAULT_VARIANT}\` worker and the variant's at once on queues filled alike; jobs/s over the same window (both past 10 % of their jobs, until one is past 90 %). \`${DEFAULT_VARIANT}\` beside itself is the control.`,
    '',
    `| concurrency | round | variant | ${DEFAULT_VARIANT} jobs/s | variant jobs/s | ratio | CPU µs/job ${DEFAULT_VARIANT} / variant | failed |`,
    '|---|---|---|---|---|---|---|---|',
  ];
  const ratio = (pair: PairedWorkerResult) => pair.otherJobsPerSecond / pair.referenceJobsPerSecond;
  for (const pair of pairs) {
    lines.push(
      `| ${pair.concurrency} | ${pair.round} | ${pair.variant} | ${pair.referenceJobsPerSecond} | ${pair.otherJobsPerSecond} | ${ratio(pair).toFixed(3)} | ${pair.referenceCpuMicrosPerJob ?? 'n/a'} / ${pair.otherCpuMicrosPerJob ?? 'n/a'} | ${pair.failed} |`,
    );
  }
  lines.push('');
  for (const concurrency of new Set(pairs.map((pair) => pair.concurrency))) {
    for (const variant of new Set(pairs.map((pair) => pair.variant))) {
      const ratios = pairs
        .filter((pair) => pair.variant === variant && pair.concurrency === concurrency)
        .map(ratio);
      lines.push(pairedLine('worker', variant, `, c=${concurrency}`, ratios));
    }
  }
  lines.push('');
  return lines;
}

/** The kinds of results besides the reference one, in the order they were measured. */
function kindsOf(results: readonly { kind: string }[], reference: string): string[] {
  return [...new Set(results.map((r) => r.kind))].filter((kind) => kind !== reference);
}

/**
 * Per variant, its median per-round ratio to the default variant: what turning the feature on
 * (or the fast path off) costs, free of the round-to-round swing both share.
 */
function costLines(load: LoadResult[], workers: WorkerResult[]): string[] {
  const lines: string[] = [];
  const relative = (mine: number[], theirs: number[]) =>
    mine.flatMap((value, index) => {
      const other = theirs[index];
      return other === undefined ? [] : [value / other];
    });
  const defaultIngest = ratiosByRound(load, DEFAULT_VARIANT);
  for (const kind of kindsOf(load, 'baseline')) {
    if (kind === DEFAULT_VARIANT) continue;
    const ratios = relative(ratiosByRound(load, kind), defaultIngest);
    if (ratios.length > 0) {
      lines.push(
        `- ingest \`${kind}\`: ${median(ratios).toFixed(3)}× the \`${DEFAULT_VARIANT}\` ingest's req/s (rounds ${ratios.map((r) => r.toFixed(2)).join(', ')})`,
      );
    }
  }
  for (const c of new Set(workers.map((w) => w.concurrency))) {
    const defaultWorker = workerRatiosByRound(workers, c, DEFAULT_VARIANT);
    for (const kind of kindsOf(workers, 'bare')) {
      if (kind === DEFAULT_VARIANT) continue;
      const ratios = relative(workerRatiosByRound(workers, c, kind), defaultWorker);
      if (ratios.length > 0) {
        lines.push(
          `- worker \`${kind}\` c=${c}: ${median(ratios).toFixed(3)}× the \`${DEFAULT_VARIANT}\` worker's jobs/s (rounds ${ratios.map((r) => r.toFixed(2)).join(', ')})`,
        );
      }
    }
  }
  return lines;
}

function ratiosByRound(load: LoadResult[], kind: string): number[] {
  const ratios: number[] = [];
  for (const round of new Set(load.map((r) => r.round))) {
    const base = load.find((r) => r.kind === 'baseline' && r.round === round);
    const ingest = load.find((r) => r.kind === kind && r.round === round);
    if (base && ingest) ratios.push(ingest.requestsPerSecond / base.requestsPerSecond);
  }
  return ratios;
}

/** Where the tracing variants export: a sink the bench starts when one of them is measured. */
let traceSinkUrl: string | undefined;

/**
 * A variant's environment, with the bench's PostgreSQL when it needs one, and the trace sink's
 * endpoint for the tracing ones.
 */
function variantEnv(variant: Variant): Record<string, string> {
  const env: Record<string, string> = { ...variant.env };
  if (variant.needsPostgres === true) {
    if (archiveUrl === undefined) throw new Error(`variant ${variant.name} needs PostgreSQL`);
    env.ARCHIVE_DATABASE_URL = archiveUrl;
  }
  if (variant.traceSink === true) {
    if (traceSinkUrl === undefined) throw new Error('the trace sink is not running');
    env.OTEL_EXPORTER_OTLP_ENDPOINT = traceSinkUrl;
  }
  return env;
}

const postgres = variants.some((variant) => variant.needsPostgres === true)
  ? await startPostgres()
  : undefined;
const archiveUrl =
  postgres === undefined ? undefined : await postgres.createDatabase('groq_bench_history');
const redis = await startRedis();
const admin = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'admin');
/** `--paired`: the default variant, and the others of that side to run beside it. */
function pairedSides(side: 'ingest' | 'worker') {
  const reference = sideVariants(side).find((variant) => variant.name === DEFAULT_VARIANT);
  if (reference === undefined) throw new Error(`--paired needs the ${DEFAULT_VARIANT} ${side}`);
  return { reference, others: sideVariants(side).filter((variant) => variant !== reference) };
}

const load: LoadResult[] = [];
const paired: PairedResult[] = [];
const pairedWorkers: PairedWorkerResult[] = [];
const workers: WorkerResult[] = [];
let oneResource: OneResourceResult | undefined;
const oneResourceJobs = Number(args['one-resource'] ?? (quick ? 500 : 10_000));
let traceSink: ChildProcess | undefined;
try {
  await waitFor(() => admin.status === 'ready');
  if (variants.some((variant) => variant.traceSink === true)) {
    const port = await freePort();
    traceSink = spawnNode(ENTRY.traceSink, { PORT: String(port) });
    traceSinkUrl = `http://127.0.0.1:${port}`;
    const probe = `${traceSinkUrl}/v1/traces`;
    await waitFor(async () => (await fetch(probe, { method: 'POST', body: '{}' })).ok, {
      timeoutMs: 10_000,
      description: 'the trace sink to answer',
    });
  }
  if (!args['skip-ingest'] && args.paired) {
    const { reference, others } = pairedSides('ingest');
    for (let round = 1; round <= rounds; round++) {
      for (const variant of rotated([reference, ...others], round - 1)) {
        paired.push(await pairedRound(reference, variant, round, redis, admin));
      }
    }
  } else if (!args['skip-ingest']) {
    for (let round = 1; round <= rounds; round++) {
      for (const variant of rotated([undefined, ...sideVariants('ingest')], round - 1)) {
        load.push(await loadRound(variant, round, redis, admin));
      }
    }
  }
  if (!args['skip-worker']) {
    for (const concurrency of workerConcurrencies) {
      for (let round = 1; round <= rounds; round++) {
        if (args.paired) {
          const { reference, others } = pairedSides('worker');
          for (const variant of rotated([reference, ...others], round - 1)) {
            pairedWorkers.push(
              await pairedWorkerRound(reference, variant, concurrency, round, redis, admin),
            );
          }
          continue;
        }
        for (const variant of rotated([undefined, ...sideVariants('worker')], round - 1)) {
          workers.push(await workerRound(variant, concurrency, round, redis, admin));
        }
      }
    }
    if (oneResourceJobs > 0) oneResource = await oneResourceRun(oneResourceJobs, 50, redis, admin);
  }
} finally {
  if (traceSink !== undefined) await stop(traceSink);
  await closeRedis(admin);
  await redis.cleanup();
  await postgres?.cleanup();
}

const date = new Date().toISOString();
const report = {
  date,
  machine: machine(),
  settings: {
    rounds,
    durationSeconds,
    warmupSeconds,
    connections,
    workerConcurrencies,
    quick,
    paired: args.paired === true,
  },
  variants,
  load,
  paired,
  pairedWorkers,
  workers,
  oneResource,
};
const text = markdown(report);
mkdirSync(args.out ?? 'reports', { recursive: true });
const stem = join(args.out ?? 'reports', `bench-${date.replace(/[:.]/g, '-')}`);
writeFileSync(`${stem}.json`, `${JSON.stringify(report, null, 2)}\n`);
writeFileSync(`${stem}.md`, text);
process.stdout.write(`${text}\nReport: ${stem}.md and .json\n`);
const lost =
  [...load, ...paired.flatMap((pair) => [pair.reference, pair.other])].reduce(
    (sum, r) => sum + (r.ackedWithoutJob ?? 0),
    0,
  ) +
  workers.reduce((sum, w) => sum + w.failed, 0) +
  pairedWorkers.reduce((sum, w) => sum + w.failed, 0) +
  (oneResource?.failed ?? 0);
if (oneResource !== undefined && oneResource.mostRunning !== 1) {
  process.stderr.write(`FAILED: one-resource events ran ${oneResource.mostRunning} at once\n`);
  process.exit(1);
}
if (lost > 0) {
  process.stderr.write(`FAILED: ${lost} acknowledged events without a job, or failed jobs\n`);
  process.exit(1);
}
