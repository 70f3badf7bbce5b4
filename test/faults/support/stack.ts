import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import {
  freePort,
  type RunningProcess,
  type StartRedisOptions,
  startProcess,
  startRedis,
  type TestRedis,
  waitFor,
} from '@groq-webhooks/testing';
import { Redis } from 'ioredis';
import { ENTRY, ROOT } from '../../support/paths.js';

/** Receiver secret every fault scenario signs with. */
export const SECRET = 'whsec_fault-suite-secret-0123456789';
/** Handler module the workers load: records each completed effect in the effects Redis. */
export const HANDLERS = fileURLToPath(new URL('./handlers.mjs', import.meta.url));
/** The BullMQ key prefix of the default queue (QUEUE_PREFIX `{groq}`, QUEUE_NAME `groq-events`). */
export const QUEUE_KEY = '{groq}:groq-events';

/** Everything a scenario starts, so one `cleanup()` in afterAll removes it all. */
export class Stack {
  readonly #processes = new Set<RunningProcess>();
  readonly #redises: TestRedis[] = [];
  readonly #clients: Redis[] = [];

  /** A private redis-server; `restart()`ed ones must be handed back with {@link adopt}. */
  async redis(options: StartRedisOptions = {}): Promise<TestRedis> {
    const redis = await startRedis(options);
    this.#redises.push(redis);
    return redis;
  }

  /** Tracks a redis-server started by `restart()` for cleanup. */
  adopt(redis: TestRedis): TestRedis {
    this.#redises.push(redis);
    return redis;
  }

  /** An ioredis client for the test's own reads, closed at cleanup. */
  client(url: string): Redis {
    const client = new Redis(url, { maxRetriesPerRequest: null, lazyConnect: false });
    client.on('error', () => {});
    this.#clients.push(client);
    return client;
  }

  /** Starts an ingest process on a free port and waits until it listens. */
  async ingest(redisUrl: string, env: Record<string, string> = {}, port?: number): Promise<Ingest> {
    const listenPort = port ?? (await freePort());
    const child = this.#track(
      startProcess(process.execPath, [ENTRY.ingest], {
        cwd: ROOT,
        env: {
          GROQ_WEBHOOK_SECRET: SECRET,
          REDIS_URL: redisUrl,
          REDIS_CLUSTER_NODES: undefined,
          HOST: '127.0.0.1',
          PORT: String(listenPort),
          LOG_LEVEL: 'warn',
          ...env,
        },
      }),
    );
    await untilExit(
      child,
      waitFor(async () => (await fetch(`http://127.0.0.1:${listenPort}/healthz`)).status === 200, {
        timeoutMs: 20_000,
        description: `ingest on ${listenPort}`,
      }),
    );
    return {
      process: child,
      port: listenPort,
      url: `http://127.0.0.1:${listenPort}/webhooks/groq`,
    };
  }

  /** Starts a worker process running {@link HANDLERS}; does not wait for Redis. */
  worker(redisUrl: string, effectsUrl: string, env: Record<string, string> = {}): RunningProcess {
    return this.#track(
      startProcess(process.execPath, [ENTRY.worker], {
        cwd: ROOT,
        env: {
          REDIS_URL: redisUrl,
          REDIS_CLUSTER_NODES: undefined,
          EFFECTS_REDIS_URL: effectsUrl,
          HANDLERS_MODULE: HANDLERS,
          WORKER_METRICS_PORT: '0',
          LOG_LEVEL: 'warn',
          ...env,
        },
      }),
    );
  }

  /** Starts a worker and waits until it consumes its queue. */
  async readyWorker(
    redisUrl: string,
    effectsUrl: string,
    env: Record<string, string> = {},
  ): Promise<RunningProcess> {
    // 'Worker ready' is an info line: keep info on for this one line's sake.
    const worker = this.worker(redisUrl, effectsUrl, { LOG_LEVEL: 'info', ...env });
    await worker.waitForOutput('Worker ready', 30_000);
    return worker;
  }

  /** Kills everything still running and removes the Redis data directories. */
  async cleanup(): Promise<void> {
    for (const client of this.#clients) client.disconnect();
    await Promise.all([...this.#processes].map((process) => process.kill()));
    // Newest first: a restarted server shares its data directory with the one it replaced.
    for (const redis of [...this.#redises].reverse()) await redis.cleanup();
  }

  #track(process: RunningProcess): RunningProcess {
    this.#processes.add(process);
    void process.exited.then(() => this.#processes.delete(process));
    return process;
  }
}

/** Resolves as `waiting` does, but fails at once (with its output) if `process` exits first. */
async function untilExit<T>(process: RunningProcess, waiting: Promise<T>): Promise<T> {
  const exited = process.exited.then((code) => {
    throw new Error(
      `${process.child.spawnargs.join(' ')} exited (${code}):\n${process.output().slice(-2000)}`,
    );
  });
  exited.catch(() => {});
  return Promise.race([waiting, exited]);
}

/** A running ingest process. */
export interface Ingest {
  readonly process: RunningProcess;
  readonly port: number;
  /** The webhook URL. */
  readonly url: string;
}

/** True when no job of the queue can still run: nothing waiting, active, delayed or prioritized. */
export async function queueDrained(client: Redis): Promise<boolean> {
  const [wait, active, delayed, prioritized, paused] = await Promise.all([
    client.llen(`${QUEUE_KEY}:wait`),
    client.llen(`${QUEUE_KEY}:active`),
    client.zcard(`${QUEUE_KEY}:delayed`),
    client.zcard(`${QUEUE_KEY}:prioritized`),
    client.llen(`${QUEUE_KEY}:paused`),
  ]);
  return wait + active + delayed + prioritized + paused === 0;
}

/** Resident memory of a process in KiB, from /proc. */
export async function rssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+([0-9]+) kB/m.exec(status);
  if (!match?.[1]) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]);
}
