import type { WorkerConfig } from '@groq-webhooks/config';
import { type HandlerMap, handlerOptions } from '@groq-webhooks/core';
import {
  closeRedis,
  DoneSweeper,
  type EventJobData,
  type EventLedger,
  type EventQueue,
  HistoryWriter,
  type MarkerSettings,
  openMarkerSettings,
  openQueue,
  type QueuePath,
  queueShards,
  type RedisClient,
  ROLLOUT_WINDOW_SECONDS,
  Worker,
  waitForRedis,
} from '@groq-webhooks/queue';
import type { Logger, Registry } from '@groq-webhooks/telemetry';
import type { Tracer } from '@opentelemetry/api';
import { type AttemptHistoryWriter, attemptHistory } from './attempt-history.js';
import { bullmqWorkerOptions } from './bullmq-options.js';
import { watchLocks, watchRenewals } from './lock-watch.js';
import {
  createWorkerMetrics,
  QUEUE_STATES,
  type QueueState,
  type WorkerMetrics,
} from './metrics.js';
import { createProcessor } from './processor.js';
import { type HeldClaim, shutdownAbortError } from './steps/attempt.js';

/** Delay before a job whose event is claimed by a live worker is looked at again. */
export const DEFAULT_REQUEUE_DELAY_MS = 1000;

/** Past the grace period, how long closing may still take before connections are cut. */
const FORCE_CLOSE_AFTER_MS = 5000;

/** The worker configuration fields {@link createWorker} uses. */
export type WorkerSettings = Pick<
  WorkerConfig,
  | 'queueName'
  | 'queuePrefix'
  | 'queueShards'
  | 'jobAttempts'
  | 'backoffBaseMs'
  | 'concurrency'
  | 'handlerTimeoutMs'
  | 'lockDurationMs'
  | 'stalledIntervalMs'
  | 'idempotencyTtlSeconds'
>;

/** Dependencies of {@link createWorker}. */
export interface WorkerDeps {
  settings: WorkerSettings;
  /**
   * Opens a new `worker`-role Redis connection (e.g. `createRedis(config, 'worker', name)`).
   * Called by `start()`: once per queue shard and once for the idempotency store.
   */
  connect: (connectionName: string) => RedisClient;
  /** The stock or the fast path (`chooseQueuePath`), chosen once for the process. */
  path: QueuePath;
  handlers: HandlerMap;
  logger: Logger;
  /** Registry the worker's metrics are registered on. */
  registry: Registry;
  /** Stored on every job this worker processes. Default `groq-worker`. */
  name?: string;
  /** Delay before re-trying a job whose event is busy elsewhere. Default 1 s. */
  requeueDelayMs?: number;
  /**
   * The event history is on (`ARCHIVE_DATABASE_URL`): every attempt's outcome is recorded in
   * its shard's history stream. Default: off.
   */
  history?: boolean;
  /** When set, every attempt runs inside a span (tracing on). */
  tracer?: Tracer | undefined;
}

/** A worker process's job-running part. */
export interface EventWorker {
  /**
   * Connects and starts taking jobs from every queue shard. Waits for Redis when it is down;
   * resolves once every shard is being consumed (or once `close` was called meanwhile).
   */
  start(): Promise<void>;
  /**
   * Stops taking jobs and lets running handlers finish; at `graceMs` their signals abort and
   * their jobs go back to the queue without spending an attempt. Closes every connection.
   */
  close(graceMs: number): Promise<void>;
  /** The worker's metrics (also on the registry). */
  readonly metrics: WorkerMetrics;
}

/** Builds a worker. Side-effect free: nothing connects before `start()`. */
export function createWorker(deps: WorkerDeps): EventWorker {
  const { settings, logger } = deps;
  const shards = queueShards(settings);
  const claims = new Map<string, HeldClaim>();
  const shutdown = new AbortController();
  // At the end of the grace period every running handler is aborted through its claim.
  shutdown.signal.addEventListener('abort', () => {
    for (const claim of claims.values()) claim.abort(shutdownAbortError());
  });
  const stopping = new AbortController();
  const clients: RedisClient[] = [];
  const workers: Worker<EventJobData, void, string>[] = [];
  const queues: EventQueue[] = [];
  let starting: Promise<void> | undefined;
  let closing: Promise<void> | undefined;
  let watchdog: NodeJS.Timeout | undefined;
  let ledger: EventLedger | undefined;
  let sweeper: DoneSweeper | undefined;
  let history: AttemptHistoryWriter | undefined;
  let lastHistoryWarning = 0;
  const { ordering } = handlerOptions(deps.handlers);

  const metrics = createWorkerMetrics(deps.registry, () => queueDepth(queues));

  async function start(): Promise<void> {
    const storeClient = deps.connect('groq-webhooks-worker-store');
    clients.push(storeClient);
    // How done-markers are written is read from Redis before the first one is.
    const notice = setTimeout(() => waitingForRedis(), 1000);
    const connected = await waitForRedis(storeClient, undefined, stopping.signal);
    clearTimeout(notice);
    if (!connected) return;
    const events = deps.path.ledger(storeClient, {
      doneTtlSeconds: settings.idempotencyTtlSeconds,
      markers: await markerSettings(storeClient),
      turnsAtFetch: ordering === 'per-resource',
    });
    ledger = events;
    // Expired done-markers are dropped in small steps, paced over the fleet.
    sweeper = new DoneSweeper(storeClient, {
      onError: (error) => logger.debug({ err: error }, 'Done-marker sweep step failed'),
    });
    sweeper.start();
    history =
      deps.history === true
        ? attemptHistory(
            new HistoryWriter({ client: storeClient, settings }),
            events,
            (error, count) => {
              if (Date.now() - lastHistoryWarning < 5000) return;
              lastHistoryWarning = Date.now();
              logger.warn(
                { err: error, records: count },
                'Attempt records of the event history not written',
              );
            },
          )
        : undefined;
    const processor = createProcessor({
      handlers: deps.handlers,
      ledger: events,
      logger,
      metrics,
      settings: {
        lockDurationMs: settings.lockDurationMs,
        handlerTimeoutMs: settings.handlerTimeoutMs,
        requeueDelayMs: deps.requeueDelayMs ?? DEFAULT_REQUEUE_DELAY_MS,
      },
      shutdown: shutdown.signal,
      claims,
      ordering,
      history,
      workerName: deps.name ?? 'groq-worker',
      tracer: deps.tracer,
    });
    watchdog = watchRenewals(claims, settings.lockDurationMs, logger);
    for (const shard of shards) {
      const queue = openQueue(storeClient, shard, settings);
      queue.on('error', () => {
        // Only used for depth metrics, which report nothing while Redis is away.
      });
      queues.push(queue);
    }
    await Promise.all(
      shards.map(async (shard) => {
        const connection = deps.connect(`groq-webhooks-worker-${shard.name}`);
        clients.push(connection);
        // A fresh client is still connecting; only report a wait that lasts.
        const notice = setTimeout(() => waitingForRedis(shard.name), 1000);
        const ready = await waitForRedis(connection, undefined, stopping.signal);
        clearTimeout(notice);
        if (!ready) return;
        const worker = new Worker<EventJobData, void, string>(
          shard.name,
          processor,
          bullmqWorkerOptions(settings, shard, connection, deps.name ?? 'groq-worker', logger),
          // The path's BullMQ backend: BullMQ's own, or the fast path's fused job finish.
          events.backendFactory,
        );
        watchLocks(worker, {
          claims,
          ledger: events,
          lockDurationMs: settings.lockDurationMs,
          logger,
          metrics,
        });
        workers.push(worker);
        await worker.waitUntilReady();
        worker.run().catch((error: unknown) => {
          logger.error({ err: error, queue: shard.name }, 'Worker loop stopped');
        });
      }),
    );
  }

  function waitingForRedis(queue?: string): void {
    logger.warn(queue === undefined ? {} : { queue }, 'Redis is not reachable yet; waiting for it');
  }

  /**
   * The done-marker settings from the upgrade record (`openMarkerSettings`). Unreadable (Redis
   * refusing writes, say): the compact layout, and the previous one's markers too for an hour,
   * in case a worker of the previous version still runs.
   */
  async function markerSettings(client: RedisClient): Promise<MarkerSettings> {
    const shadowing = (until: number) =>
      logger.info(
        { until: new Date(until * 1000).toISOString() },
        'Done-markers of the previous layout are written too until the rollout window ends',
      );
    try {
      const markers = await openMarkerSettings(client, {
        ttlSeconds: settings.idempotencyTtlSeconds,
        // What a worker that handled events leaves (an ingest, CLI or dashboard leave others).
        queueKeys: shards.flatMap((shard) =>
          ['completed', 'failed'].map((type) => `${shard.prefix}:${shard.name}:${type}`),
        ),
      });
      if (markers.shadowUntil * 1000 > Date.now()) shadowing(markers.shadowUntil);
      return markers;
    } catch (error) {
      const shadowUntil = Math.floor(Date.now() / 1000) + ROLLOUT_WINDOW_SECONDS;
      logger.warn({ err: error }, 'Could not read the done-marker upgrade record');
      shadowing(shadowUntil);
      return { layout: 'buckets', shadowUntil };
    }
  }

  async function close(graceMs: number): Promise<void> {
    stopping.abort();
    await starting?.catch(() => {});
    const graceTimer = setTimeout(() => shutdown.abort(), graceMs);
    try {
      const closed = await withTimeout(
        Promise.all(workers.map((worker) => worker.close())),
        graceMs + FORCE_CLOSE_AFTER_MS,
      ).then(
        () => true,
        () => false,
      );
      if (!closed) logger.warn('Workers did not close in time; cutting connections');
      // With Redis gone these would wait for it forever (commands wait while the clients
      // reconnect): past the bound the clients are disconnected, and what was not written by
      // then is lost, as the warning says.
      const finished = await withTimeout(
        (async () => {
          await markUnfinishedDone();
          await sweeper?.stop();
          await history?.flush();
          await Promise.allSettled(queues.map((queue) => queue.close()));
        })(),
        FORCE_CLOSE_AFTER_MS,
      ).then(
        () => true,
        () => false,
      );
      if (!finished) {
        logger.warn(
          'Redis did not answer the close in time; disconnecting (done-marks and history records not written by now are lost)',
        );
      }
    } finally {
      clearTimeout(graceTimer);
      clearInterval(watchdog);
      await Promise.all(clients.map((client) => closeRedis(client)));
    }
  }

  /**
   * Events whose handler succeeded but whose job BullMQ did not finish before closing: their
   * effect happened, so they are marked done (their jobs run again later and are skipped).
   */
  async function markUnfinishedDone(): Promise<void> {
    const failed = (await ledger?.markUnfinishedDone()) ?? 0;
    if (failed > 0) logger.warn({ count: failed }, 'Could not mark handled events done at close');
  }

  return {
    metrics,
    start() {
      if (starting === undefined) starting = start();
      return starting;
    },
    close(graceMs) {
      if (closing === undefined) closing = close(graceMs);
      return closing;
    },
  };
}

/** The queue depth by state over every shard, or undefined while Redis does not answer. */
async function queueDepth(
  queues: readonly EventQueue[],
): Promise<Record<QueueState, number> | undefined> {
  if (queues.length === 0) return undefined;
  try {
    const counts = await withTimeout(
      Promise.all(queues.map((queue) => queue.getJobCounts(...QUEUE_STATES))),
      1000,
    );
    const total = Object.fromEntries(QUEUE_STATES.map((state) => [state, 0])) as Record<
      QueueState,
      number
    >;
    for (const count of counts) {
      for (const state of QUEUE_STATES) total[state] += count[state] ?? 0;
    }
    return total;
  } catch {
    return undefined;
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
