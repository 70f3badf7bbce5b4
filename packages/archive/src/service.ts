import { databaseLocation } from '@groq-webhooks/config';
import type { QueueSettings, RedisClient } from '@groq-webhooks/queue';
import { Counter, Gauge, type Logger, type Registry } from '@groq-webhooks/telemetry';
import pg from 'pg';
import {
  Archiver,
  type ArchiverDeps,
  type ArchiverStats,
  type HistoryBacklog,
} from './archiver.js';
import { migrate } from './migrations.js';
import { sleep } from './sleep.js';
import { HistoryStore } from './store.js';

/** Options of {@link openHistoryPool}. */
export interface HistoryPoolOptions {
  /** Connections at most. Default 4. */
  max?: number;
  /** `application_name` PostgreSQL shows. */
  applicationName?: string;
  /** A statement running longer fails (and is retried by its caller). Default 30 s. */
  statementTimeoutMs?: number;
  /** Connecting longer fails. Default 5 s. */
  connectTimeoutMs?: number;
}

/**
 * A `pg` pool for the history database. Connection errors (the server stopped or restarted) are
 * swallowed, on idle connections and on those checked out alike: a checked-out client emits
 * them on itself, and an 'error' nobody listens to ends the process. The next query reconnects,
 * and a failing query reports the outage to its caller.
 */
export function openHistoryPool(url: string, options: HistoryPoolOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 4,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    idleTimeoutMillis: 30_000,
    query_timeout: options.statementTimeoutMs ?? 30_000,
    application_name: options.applicationName ?? 'groq-webhooks',
  });
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

/** Dependencies of {@link createHistoryService}. */
export interface HistoryServiceDeps {
  databaseUrl: string;
  retentionDays: number;
  /** A `worker`-role client for the archiver alone (its reads block). Closed by `close()`. */
  redis: RedisClient;
  settings: QueueSettings;
  logger: Logger;
  /** The archiver's consumer name: unique per process. */
  consumer: string;
  /** Metrics are registered here when given. */
  registry?: Registry;
  /** Time between retention runs. Default 1 h (the first runs a minute after start). */
  pruneIntervalMs?: number;
  /** Passed to the archiver (tests shorten its timings). */
  archiver?: Partial<
    Pick<ArchiverDeps, 'batchSize' | 'lingerMs' | 'blockMs' | 'claimIdleMs' | 'backoffMs'>
  >;
  /** Closing the Redis client, injectable. */
  closeRedis: (client: RedisClient) => Promise<void>;
}

/** The history's part of a worker process: migrations, archiver, retention. */
export interface HistoryService {
  readonly archiver: Archiver;
  readonly store: HistoryStore;
  /**
   * Starts in the background: migrates (retrying while PostgreSQL is unreachable), then runs the
   * archiver and the retention pruner. Never throws and never delays event handling.
   */
  start(): void;
  /** Stops the loops and closes the pool and the Redis client. */
  close(): Promise<void>;
}

/** Builds the worker's history service. Side-effect free until `start()`. */
export function createHistoryService(deps: HistoryServiceDeps): HistoryService {
  const pool = openHistoryPool(deps.databaseUrl, {
    max: 3,
    applicationName: `groq-webhooks-archiver ${deps.consumer}`,
  });
  const store = new HistoryStore(pool);
  const archiver = new Archiver({
    ...deps.archiver,
    client: deps.redis,
    store,
    settings: deps.settings,
    logger: deps.logger,
    consumer: deps.consumer,
  });
  if (deps.registry !== undefined) {
    registerHistoryMetrics(deps.registry, () => archiverSnapshot(archiver));
  }
  const stopping = new AbortController();
  let running: Promise<void> | undefined;
  const where = databaseLocation(deps.databaseUrl);

  async function migrateUntilDone(): Promise<boolean> {
    let wait = 500;
    let logged = 0;
    while (!stopping.signal.aborted) {
      try {
        const applied = await migrate(pool);
        if (applied.length > 0) {
          deps.logger.info({ versions: applied, database: where }, 'History schema migrated');
        }
        return true;
      } catch (error) {
        if (Date.now() - logged > 30_000) {
          logged = Date.now();
          deps.logger.warn(
            { err: { message: (error as Error).message }, database: where },
            'History database not ready; history records wait in Redis',
          );
        }
        await sleep(wait, stopping.signal);
        wait = Math.min(wait * 2, 30_000);
      }
    }
    return false;
  }

  async function pruneLoop(): Promise<void> {
    const interval = deps.pruneIntervalMs ?? 3600_000;
    await sleep(Math.min(60_000, interval), stopping.signal);
    while (!stopping.signal.aborted) {
      const cutoff = new Date(Date.now() - deps.retentionDays * 86_400_000);
      try {
        const deleted = await store.prune(cutoff, {
          signal: stopping.signal,
          pause: () => sleep(50, stopping.signal),
        });
        if (deleted !== undefined && deleted > 0) {
          deps.logger.info(
            { deleted, retentionDays: deps.retentionDays },
            'Old history events pruned',
          );
        }
      } catch (error) {
        deps.logger.warn({ err: { message: (error as Error).message } }, 'History pruning failed');
      }
      await sleep(interval, stopping.signal);
    }
  }

  return {
    archiver,
    store,
    start() {
      running ??= (async () => {
        if (!(await migrateUntilDone())) return;
        deps.logger.info({ database: where }, 'Event history on: archiving to PostgreSQL');
        archiver.start();
        await pruneLoop();
      })();
    },
    async close() {
      stopping.abort();
      await running;
      await archiver.stop();
      await deps.closeRedis(deps.redis);
      await pool.end().catch(() => {});
    },
  };
}

/** What an archiver reports: its counters, and the backlog (undefined when Redis did not answer). */
export interface ArchiverSnapshot {
  stats: ArchiverStats;
  backlog: HistoryBacklog | undefined;
}

/** An archiver's counters and backlog; the backlog is left out past `timeoutMs` (Redis down). */
export async function archiverSnapshot(
  archiver: Archiver,
  timeoutMs = 1000,
): Promise<ArchiverSnapshot> {
  const timeout = new AbortController();
  try {
    const backlog = await Promise.race([archiver.backlog(), sleep(timeoutMs, timeout.signal)]);
    return { stats: { ...archiver.stats }, backlog: backlog ?? undefined };
  } catch {
    return { stats: { ...archiver.stats }, backlog: undefined };
  } finally {
    timeout.abort();
  }
}

/**
 * Backlog gauges and archiver counters, on the given registry, read from `snapshot` at each
 * scrape (once per scrape: the figures of one moment). A snapshot that is undefined (the
 * archiver does not answer) leaves the figures out.
 */
export function registerHistoryMetrics(
  registry: Registry,
  snapshot: () => Promise<ArchiverSnapshot | undefined>,
): void {
  const registers = [registry];
  let last: { at: number; value: Promise<ArchiverSnapshot | undefined> } | undefined;
  const read = () => {
    if (last === undefined || Date.now() - last.at > 250) {
      last = { at: Date.now(), value: snapshot().catch(() => undefined) };
    }
    return last.value;
  };
  const gauge = (name: string, help: string, pick: (backlog: HistoryBacklog) => number) =>
    new Gauge({
      name,
      help,
      registers,
      async collect() {
        const backlog = (await read())?.backlog;
        if (backlog !== undefined) this.set(pick(backlog));
      },
    });
  gauge(
    'groq_history_backlog_entries',
    'History records in Redis not yet archived to PostgreSQL (all shards)',
    (backlog) => backlog.entries,
  );
  gauge(
    'groq_history_pending_entries',
    'History records read by an archiver and not yet acknowledged (all shards)',
    (backlog) => backlog.pending,
  );
  const counter = (name: string, help: string, pick: (stats: ArchiverStats) => number) =>
    new Counter({
      name,
      help,
      registers,
      async collect() {
        const stats = (await read())?.stats;
        if (stats === undefined) return;
        this.reset();
        this.inc(pick(stats));
      },
    });
  counter(
    'groq_history_archived_total',
    'History records this process archived',
    (stats) => stats.archived,
  );
  counter(
    'groq_history_archive_failures_total',
    'Archive batches that failed (database or Redis unavailable) and were retried',
    (stats) => stats.failures,
  );
  counter(
    'groq_history_deferrals_total',
    'Times the archiver let a queue backlog be handled first (the history lags meanwhile)',
    (stats) => stats.deferrals,
  );
  counter(
    'groq_history_malformed_total',
    'History stream entries dropped as malformed',
    (stats) => stats.malformed,
  );
}
