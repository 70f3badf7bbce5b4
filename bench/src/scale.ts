import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  closeRedis,
  createRedis,
  type EventQueue,
  openQueue,
  type QueueShard,
  queueShards,
  type RedisClient,
  shardOf,
} from '@groq-webhooks/queue';
import { sign } from '@groq-webhooks/signature';
import {
  freePort,
  startRedis,
  startRedisCluster,
  type TestCluster,
  type TestRedis,
  waitFor,
} from '@groq-webhooks/testing';
import autocannon from 'autocannon';
import { benchJob } from './jobs.js';
import { cpuMillis } from './proc-stat.js';
import { ENTRY, machine, SECRET, spawnNode, stop } from './processes.js';

// pnpm bench -- --scale: how throughput grows with worker processes, ingest processes and queue
// shards, and which process is the ceiling (CPU of every Redis and Node process in the run).

const PREFIX = '{groq}';
const JOB_CONFIG = { jobAttempts: 8, backoffBaseMs: 1000 };
const WORKER_CONCURRENCY = 50;

/** Options of {@link runScale}. */
export interface ScaleOptions {
  /** Short runs, one round: a smoke test of the harness, not figures to quote. */
  quick: boolean;
  /** Directory the Markdown and JSON reports go to. */
  out: string;
  /** Rounds per configuration. Default 2 (1 with `quick`). */
  rounds?: number;
  /** Seconds of measured load per ingest run. Default 8 (2 with `quick`). */
  durationSeconds?: number;
  /** Load-generator connections, split over the ingest processes. Default 50. */
  connections?: number;
}

/** Where Redis is: one server, or the masters of a Cluster. */
interface Target {
  kind: 'redis' | 'cluster';
  redisUrl: string;
  clusterNodes: string | undefined;
  /** redis-server processes, for their CPU. */
  redisPids: number[];
  /** Empties every server between runs. */
  flush(): Promise<void>;
}

/** CPU used during a run, in % of one core, per process. */
type CpuShares = Record<string, number>;

/** One worker-throughput measurement. */
export interface WorkerRun {
  target: Target['kind'];
  shards: number;
  workers: number;
  round: number;
  jobs: number;
  jobsPerSecond: number;
  failed: number;
  cpu: CpuShares;
  /** Whole-machine busy %, of all cores (other load on the machine shows here). */
  machineBusy: number;
}

/** One ingest-throughput measurement. */
export interface IngestRun {
  target: Target['kind'];
  shards: number;
  ingests: number;
  round: number;
  requestsPerSecond: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
  cpu: CpuShares;
  machineBusy: number;
}

/** The whole scaling report. */
export interface ScaleReport {
  date: string;
  machine: { cpu: string; cores: number; memoryGiB: number; node: string; redis: string };
  settings: Record<string, unknown>;
  workers: WorkerRun[];
  ingest: IngestRun[];
}

const log = (line: string) => process.stderr.write(`${line}\n`);

/** Busy and total jiffies of the whole machine, from /proc/stat. */
function machineTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const ticks = line.trim().split(/\s+/).slice(1).map(Number);
  const total = ticks.reduce((sum, tick) => sum + tick, 0);
  // idle and iowait are the 4th and 5th fields.
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  return { busy: total - idle, total };
}

/** Measures CPU of named processes (and the machine) over a stretch of wall time. */
function cpuMeter(pids: Record<string, number>) {
  const started = performance.now();
  const before = Object.fromEntries(
    Object.entries(pids).map(([name, pid]) => [name, cpuMillis(pid)]),
  );
  const self = process.cpuUsage();
  const machine = machineTicks();
  return (): { cpu: CpuShares; machineBusy: number } => {
    const wallMs = performance.now() - started;
    const cpu: CpuShares = {};
    for (const [name, pid] of Object.entries(pids)) {
      const from = before[name];
      const to = cpuMillis(pid);
      if (from !== undefined && to !== undefined) cpu[name] = percent(to - from, wallMs);
    }
    const own = process.cpuUsage(self);
    cpu['load generator / bench'] = percent((own.user + own.system) / 1000, wallMs);
    const now = machineTicks();
    const machineBusy = percent(now.busy - machine.busy, now.total - machine.total);
    return { cpu, machineBusy };
  };
}

function percent(part: number, whole: number): number {
  return whole > 0 ? Math.round((part / whole) * 100) : 0;
}

function redisPids(target: Target): Record<string, number> {
  return Object.fromEntries(
    target.redisPids.map((pid, i) => [
      target.kind === 'cluster' ? `redis master ${i}` : 'redis',
      pid,
    ]),
  );
}

function adminClient(target: Target): RedisClient {
  return createRedis(
    {
      redisUrl: target.redisUrl,
      redisClusterNodes: target.clusterNodes?.split(',').map((node) => {
        const [host = '127.0.0.1', port = '0'] = node.split(':');
        return { host, port: Number(port) };
      }),
    },
    'admin',
    'groq-webhooks-bench',
  );
}

function queueEnv(
  target: Target,
  queueName: string,
  shards: number,
): Record<string, string | undefined> {
  return {
    REDIS_URL: target.redisUrl,
    REDIS_CLUSTER_NODES: target.clusterNodes,
    QUEUE_NAME: queueName,
    QUEUE_PREFIX: PREFIX,
    QUEUE_SHARDS: String(shards),
  };
}

async function remainingJobs(queues: EventQueue[]): Promise<number> {
  const counts = await Promise.all(
    queues.map((queue) => queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized')),
  );
  return counts.flatMap((count) => Object.values(count)).reduce((sum, n) => sum + n, 0);
}

/**
 * N real worker processes (trivial handler, concurrency 50) drain a pre-filled queue. The queue
 * stays paused until every worker is connected, so start-up is not measured; the rate is taken
 * over the first 90 % of the jobs (the tail, with idle workers, is not).
 */
async function workerRun(
  target: Target,
  shards: number,
  workers: number,
  round: number,
  jobs: number,
): Promise<WorkerRun> {
  const queueName = `scale-w${workers}-s${shards}-r${round}`;
  const layout: QueueShard[] = queueShards({ queueName, queuePrefix: PREFIX, queueShards: shards });
  const admin = adminClient(target);
  await waitFor(() => admin.status === 'ready', { timeoutMs: 10_000 });
  const queues = layout.map((shard) => openQueue(admin, shard, JOB_CONFIG));
  const children: ChildProcess[] = [];
  try {
    await Promise.all(queues.map((queue) => queue.pause()));
    const created = new Date().toISOString();
    const perShard = layout.map(() => [] as ReturnType<typeof benchJob>[]);
    for (let i = 0; i < jobs; i++) {
      const id = `evt_${queueName}_${Date.now()}_${i}`;
      perShard[shardOf(id, shards)]?.push(benchJob(id, i, created));
    }
    for (const [index, batch] of perShard.entries()) {
      const queue = queues[index];
      for (let i = 0; queue && i < batch.length; i += 1000)
        await queue.addBulk(batch.slice(i, i + 1000));
    }
    const env = {
      ...queueEnv(target, queueName, shards),
      WORKER_CONCURRENCY: String(WORKER_CONCURRENCY),
      WORKER_METRICS_PORT: '0',
      HANDLERS_MODULE: ENTRY.trivialHandlers,
    };
    for (let i = 0; i < workers; i++) children.push(spawnNode(ENTRY.worker, env));
    await waitFor(
      async () => {
        const counts = await Promise.all(queues.map((queue) => queue.getWorkersCount()));
        return counts.every((count) => count >= workers);
      },
      { timeoutMs: 60_000, intervalMs: 100, description: `${workers} workers on every shard` },
    );
    const pids = {
      ...redisPids(target),
      ...Object.fromEntries(children.map((child, i) => [`worker ${i + 1}`, child.pid ?? -1])),
    };
    const meter = cpuMeter(pids);
    const started = performance.now();
    await Promise.all(queues.map((queue) => queue.resume()));
    await waitFor(async () => (await remainingJobs(queues)) <= jobs * 0.1, {
      timeoutMs: 300_000,
      intervalMs: 20,
      description: '90 % of the jobs done',
    });
    const seconds = (performance.now() - started) / 1000;
    const { cpu, machineBusy } = meter();
    await waitFor(async () => (await remainingJobs(queues)) === 0, {
      timeoutMs: 120_000,
      intervalMs: 50,
    });
    const failed = (await Promise.all(queues.map((queue) => queue.getFailedCount()))).reduce(
      (sum, n) => sum + n,
      0,
    );
    const run: WorkerRun = {
      target: target.kind,
      shards,
      workers,
      round,
      jobs,
      jobsPerSecond: Math.round((jobs * 0.9) / seconds),
      failed,
      cpu,
      machineBusy,
    };
    log(
      `workers ${target.kind} shards=${shards} n=${workers} round ${round}: ${run.jobsPerSecond} jobs/s`,
    );
    return run;
  } finally {
    await Promise.all(children.map((child) => stop(child)));
    await Promise.allSettled(queues.map((queue) => queue.close()));
    await closeRedis(admin);
    await target.flush();
  }
}

/**
 * P real ingest processes on separate ports, each driven by its own autocannon instance with
 * its share of the connections (a round-robin by connection). Every request is a distinct,
 * freshly signed event, so every 200 is a real enqueue.
 */
async function ingestRun(
  target: Target,
  shards: number,
  ingests: number,
  round: number,
  options: { durationSeconds: number; warmupSeconds: number; connections: number },
): Promise<IngestRun> {
  const queueName = `scale-i${ingests}-s${shards}-r${round}`;
  const children: ChildProcess[] = [];
  const urls: string[] = [];
  try {
    for (let i = 0; i < ingests; i++) {
      const port = await freePort();
      children.push(
        spawnNode(ENTRY.ingest, {
          ...queueEnv(target, queueName, shards),
          PORT: String(port),
          HOST: '127.0.0.1',
          GROQ_WEBHOOK_SECRET: SECRET,
        }),
      );
      urls.push(`http://127.0.0.1:${port}`);
    }
    for (const url of urls) {
      await waitFor(async () => (await fetch(`${url}/readyz`)).ok, {
        timeoutMs: 20_000,
        description: `ingest ${url} ready`,
      });
    }
    let next = 0;
    const nonce = `${queueName}_${Date.now()}`;
    const drive = (seconds: number) =>
      Promise.all(
        urls.map((url) =>
          autocannon({
            url: `${url}/webhooks/groq`,
            connections: Math.max(1, Math.round(options.connections / ingests)),
            duration: seconds,
            method: 'POST',
            requests: [
              {
                setupRequest: (request) => {
                  const id = `evt_${nonce}_${next++}`;
                  const body = JSON.stringify({
                    id,
                    type: 'resource.created',
                    data: { id: `res_${id}`, object: 'batch', attributes: { status: 'completed' } },
                    created: new Date().toISOString(),
                  });
                  return {
                    ...request,
                    method: 'POST',
                    body,
                    headers: {
                      'content-type': 'application/json',
                      ...sign({ secret: SECRET, body }),
                    },
                  };
                },
              },
            ],
          }),
        ),
      );
    await drive(options.warmupSeconds);
    const meter = cpuMeter({
      ...redisPids(target),
      ...Object.fromEntries(children.map((child, i) => [`ingest ${i + 1}`, child.pid ?? -1])),
    });
    const results = await drive(options.durationSeconds);
    const { cpu, machineBusy } = meter();
    const run: IngestRun = {
      target: target.kind,
      shards,
      ingests,
      round,
      requestsPerSecond: Math.round(results.reduce((sum, r) => sum + r.requests.average, 0)),
      p99Ms: Math.max(...results.map((r) => r.latency.p99)),
      non2xx: results.reduce((sum, r) => sum + r.non2xx, 0),
      errors: results.reduce((sum, r) => sum + r.errors + r.timeouts, 0),
      cpu,
      machineBusy,
    };
    log(
      `ingest ${target.kind} shards=${shards} n=${ingests} round ${round}: ${run.requestsPerSecond} req/s`,
    );
    return run;
  } finally {
    await Promise.all(children.map((child) => stop(child)));
    await target.flush();
  }
}

function singleRedis(redis: TestRedis): Target {
  return {
    kind: 'redis',
    redisUrl: redis.url,
    clusterNodes: undefined,
    redisPids: [redis.process.pid],
    flush: async () => {
      await redis.command('FLUSHALL');
    },
  };
}

function clusterTarget(cluster: TestCluster): Target {
  return {
    kind: 'cluster',
    // Unused with REDIS_CLUSTER_NODES set; nothing answers here, so nothing can use it unnoticed.
    redisUrl: 'redis://127.0.0.1:1',
    clusterNodes: cluster.nodesEnv,
    redisPids: cluster.nodes.map((node) => node.process.pid),
    flush: async () => {
      for (const node of cluster.nodes) await node.command('FLUSHALL');
    },
  };
}

function mean(values: number[]): number {
  return values.length === 0 ? 0 : Math.round(values.reduce((a, b) => a + b, 0) / values.length);
}

function cpuText(cpu: CpuShares): string {
  return Object.entries(cpu)
    .map(([name, share]) => `${name} ${share}%`)
    .join(', ');
}

/** The busiest process of a run and the whole machine's load: where the ceiling is. */
function ceiling(cpu: CpuShares, machineBusy: number, cores: number): string {
  const [name, share] = Object.entries(cpu).reduce((a, b) => (b[1] > a[1] ? b : a), ['-', 0]);
  const total = Object.values(cpu).reduce((sum, n) => sum + n, 0);
  const limit =
    machineBusy >= 90
      ? `machine CPU-bound (${machineBusy}% of ${cores} cores busy)`
      : share >= 90
        ? `${name} saturated`
        : `no single process saturated (machine ${machineBusy}% busy)`;
  // Whatever else ran on the machine meanwhile competed for the same cores.
  const others = Math.max(0, machineBusy * cores - total);
  return `${limit}; busiest: ${name} ${share}%; processes of the run: ${total}% of ${cores * 100}%; other load: ${others}%`;
}

function markdown(report: ScaleReport): string {
  const { cores } = report.machine;
  const lines = [
    `# groq-webhooks scaling benchmark — ${report.date}`,
    '',
    `Machine: ${report.machine.cpu}, ${report.machine.memoryGiB} GiB, Node ${report.machine.node}, ${report.machine.redis}`,
    `Settings: ${JSON.stringify(report.settings)}`,
    '',
    `Every process of a run (Redis, workers or ingests, and the load generator) shares these ${cores} cores; CPU is in % of one core, from /proc/<pid>/stat over the measured window. "machine" is the whole machine's busy share, including anything else running.`,
    '',
  ];
  const workerTable = (target: Target['kind'], title: string) => {
    const runs = report.workers.filter((run) => run.target === target);
    if (runs.length === 0) return;
    lines.push(
      `## ${title}`,
      '',
      '| shards | worker processes | round | jobs/s | efficiency vs linear | failed | CPU % of a core | machine busy % |',
      '|---|---|---|---|---|---|---|---|',
    );
    for (const run of runs) {
      const single = mean(
        runs.filter((r) => r.shards === run.shards && r.workers === 1).map((r) => r.jobsPerSecond),
      );
      const efficiency =
        single > 0 ? `${Math.round((run.jobsPerSecond / (single * run.workers)) * 100)}%` : '—';
      lines.push(
        `| ${run.shards} | ${run.workers} | ${run.round} | ${run.jobsPerSecond} | ${efficiency} | ${run.failed} | ${cpuText(run.cpu)} | ${run.machineBusy} |`,
      );
    }
    lines.push('', 'Mean jobs/s and ceiling:', '');
    for (const key of new Set(runs.map((run) => `${run.shards}/${run.workers}`))) {
      const group = runs.filter((run) => `${run.shards}/${run.workers}` === key);
      const last = group[group.length - 1];
      if (!last) continue;
      lines.push(
        `- ${last.shards} shard(s), ${last.workers} worker(s): ${mean(group.map((r) => r.jobsPerSecond))} jobs/s — ${ceiling(last.cpu, last.machineBusy, cores)}`,
      );
    }
    lines.push('');
  };
  const ingestTable = (target: Target['kind'], title: string) => {
    const runs = report.ingest.filter((run) => run.target === target);
    if (runs.length === 0) return;
    lines.push(
      `## ${title}`,
      '',
      '| shards | ingest processes | round | req/s | efficiency vs linear | p99 ms | non-2xx | errors | CPU % of a core | machine busy % |',
      '|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const run of runs) {
      const single = mean(
        runs
          .filter((r) => r.shards === run.shards && r.ingests === 1)
          .map((r) => r.requestsPerSecond),
      );
      const efficiency =
        single > 0 ? `${Math.round((run.requestsPerSecond / (single * run.ingests)) * 100)}%` : '—';
      lines.push(
        `| ${run.shards} | ${run.ingests} | ${run.round} | ${run.requestsPerSecond} | ${efficiency} | ${run.p99Ms} | ${run.non2xx} | ${run.errors} | ${cpuText(run.cpu)} | ${run.machineBusy} |`,
      );
    }
    lines.push('', 'Mean req/s and ceiling:', '');
    for (const key of new Set(runs.map((run) => `${run.shards}/${run.ingests}`))) {
      const group = runs.filter((run) => `${run.shards}/${run.ingests}` === key);
      const last = group[group.length - 1];
      if (!last) continue;
      lines.push(
        `- ${last.shards} shard(s), ${last.ingests} ingest(s): ${mean(group.map((r) => r.requestsPerSecond))} req/s — ${ceiling(last.cpu, last.machineBusy, cores)}`,
      );
    }
    lines.push('');
  };
  workerTable(
    'redis',
    'Worker processes against one Redis (trivial handler, WORKER_CONCURRENCY=50)',
  );
  ingestTable(
    'redis',
    'Ingest processes against one Redis (separate ports, connections split evenly)',
  );
  workerTable('cluster', 'Queue shards on the local 3-master Cluster (workers consume all shards)');
  ingestTable('cluster', 'Ingest on the local 3-master Cluster, 1 vs 3 shards');
  return lines.join('\n');
}

/** Runs the scaling benchmark and writes `reports/scale-<date>.{md,json}`. */
export async function runScale(options: ScaleOptions): Promise<ScaleReport> {
  const quick = options.quick;
  const rounds = options.rounds ?? (quick ? 1 : 2);
  const durationSeconds = options.durationSeconds ?? (quick ? 2 : 8);
  const warmupSeconds = quick ? 1 : 2;
  const connections = options.connections ?? 50;
  const jobs = quick ? 3000 : 20_000;
  const workerCounts = [1, 2, 4];
  const clusterWorkers = quick ? [2] : [2, 4];
  const load = { durationSeconds, warmupSeconds, connections };
  const workers: WorkerRun[] = [];
  const ingest: IngestRun[] = [];

  // No AOF on either target, so one Redis and the Cluster masters do the same work per command.
  const redis = await startRedis();
  try {
    const target = singleRedis(redis);
    for (let round = 1; round <= rounds; round++) {
      for (const n of workerCounts) workers.push(await workerRun(target, 1, n, round, jobs));
      for (const n of [1, 2]) ingest.push(await ingestRun(target, 1, n, round, load));
    }
  } finally {
    await redis.cleanup();
  }
  const cluster = await startRedisCluster(3, { args: ['--appendonly', 'no'] });
  try {
    const target = clusterTarget(cluster);
    for (let round = 1; round <= rounds; round++) {
      for (const n of clusterWorkers) {
        for (const shards of [1, 3]) workers.push(await workerRun(target, shards, n, round, jobs));
      }
      for (const shards of [1, 3]) ingest.push(await ingestRun(target, shards, 1, round, load));
    }
  } finally {
    await cluster.cleanup();
  }

  const date = new Date().toISOString();
  const report: ScaleReport = {
    date,
    machine: machine(),
    settings: {
      quick,
      rounds,
      jobsPerWorkerRun: jobs,
      workerConcurrency: WORKER_CONCURRENCY,
      ingestSeconds: durationSeconds,
      warmupSeconds,
      connections,
      logLevel: 'info (default)',
    },
    workers,
    ingest,
  };
  const text = markdown(report);
  mkdirSync(options.out, { recursive: true });
  const stem = join(options.out, `scale-${date.replace(/[:.]/g, '-')}`);
  writeFileSync(`${stem}.json`, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(`${stem}.md`, text);
  process.stdout.write(`${text}\nReport: ${stem}.md and .json\n`);
  return report;
}
