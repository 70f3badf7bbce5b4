import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import { registerHistoryMetrics } from '@groq-webhooks/archive';
import {
  loadWorkerSettings,
  type WorkerConfig,
  type WorkerEnvSettings,
} from '@groq-webhooks/config';
import type { HandlerMap } from '@groq-webhooks/core';
import { createRedis, type QueuePath, queuePathFor } from '@groq-webhooks/queue';
import {
  createLogger,
  createRegistry,
  type Logger,
  type Registry,
  startTracing,
  type Tracing,
} from '@groq-webhooks/telemetry';
import { ArchiverProcess } from './archiver-process.js';
import { handlerMapProblem } from './handlers-module.js';
import { metricsListener } from './metrics.js';
import { createWorker } from './worker.js';

/**
 * Options of {@link startWorker}: your handlers, and the worker's environment variables in
 * camelCase as settings (`WORKER_CONCURRENCY` is `workerConcurrency`); any setting not given is
 * read from `process.env`.
 */
export interface StartWorkerOptions extends WorkerEnvSettings {
  /** One handler per known event type (`defineHandlers`): a map missing one does not compile. */
  handlers: HandlerMap;
}

/** A running worker. */
export interface RunningWorker {
  /** The worker's Prometheus metrics (also served on `workerMetricsPort` unless it is 0). */
  readonly registry: Registry;
  /**
   * Stops taking jobs and lets running handlers finish for `graceMs` (default
   * `shutdownGraceMs`, 10 s); then their `ctx.signal` aborts and their events go back to the
   * queue without spending an attempt. Closes every Redis connection and the metrics server,
   * and sends the spans still buffered (tracing).
   */
  close(graceMs?: number): Promise<void>;
}

/** The metrics port could not be opened. Its message is one line naming the variable. */
export class MetricsPortError extends Error {
  override name = 'MetricsPortError';
}

/**
 * Runs a worker in your own process, configured like the `groq-webhooks-worker` bin: settings
 * given here win, the rest come from `process.env`. Throws `ConfigError` (one line naming the
 * setting and its variable) on a bad value, `FastPathUnavailableError` when
 * `queueFastPath: 'on'` cannot be met. Resolves once every queue shard is being consumed,
 * so it waits for Redis. Installs no signal handlers: call `close()` on your shutdown.
 * @example const worker = await startWorker({ handlers, workerConcurrency: 20 });
 *   process.once('SIGTERM', () => void worker.close());
 */
export async function startWorker(options: StartWorkerOptions): Promise<RunningWorker> {
  const { handlers, ...settings } = options;
  // Types catch this in TypeScript; plain JavaScript gets the same refusal at start.
  const problem = handlerMapProblem(handlers);
  if (problem !== undefined) throw new TypeError(`startWorker: handlers ${problem}`);
  // Reading process.env is this function's contract: the bin and the API share one loader.
  const config = loadWorkerSettings(settings, process.env);
  const logger = createLogger({ service: 'worker', level: config.logLevel });
  const path = await queuePathFor(config, (line) => logger.warn(line));
  // As the bin: tracing when the standard OpenTelemetry variables ask for it (docs/tracing.md).
  const tracing = await startTracing({ env: process.env, service: 'worker', asyncContext: true });
  const worker = await openWorker({ config, handlers, logger, path, tracing });
  await worker.ready;
  worker.logReady('given to startWorker');
  return worker;
}

/** What {@link openWorker} needs. */
export interface OpenWorkerDeps {
  config: WorkerConfig;
  handlers: HandlerMap;
  logger: Logger;
  /** The stock or the fast path, chosen once for the process. */
  path: QueuePath;
  /** Set when tracing: every attempt runs inside a span, and closing flushes them. */
  tracing?: Tracing | undefined;
}

/** A worker opened by {@link openWorker}: it may still be waiting for Redis. */
export interface OpenedWorker extends RunningWorker {
  /** Resolves once every shard is consumed (or once `close` was called meanwhile). */
  readonly ready: Promise<void>;
  /** Writes the "Worker ready" line, unless closing. */
  logReady(handlers: string): void;
}

/**
 * The worker's wiring, shared by {@link startWorker} and the bin: metrics server (listening
 * before this resolves; {@link MetricsPortError} when it cannot), the queue consumers, and the
 * event history's archiver when `ARCHIVE_DATABASE_URL` is set.
 */
export async function openWorker(deps: OpenWorkerDeps): Promise<OpenedWorker> {
  const { config, handlers, logger, path, tracing } = deps;
  const registry = createRegistry('worker');
  const server =
    config.metricsPort > 0
      ? await listen(registry, config.metricsPort, config.metricsHost)
      : undefined;
  const worker = createWorker({
    settings: config,
    connect: (name) => createRedis(config, 'worker', name),
    path,
    handlers,
    logger,
    registry,
    name: `groq-worker-${process.pid}`,
    history: config.archiveDatabaseUrl !== undefined,
    tracer: tracing?.tracer,
  });
  // The event history: this worker's archiver, a process of its own at a lower CPU priority,
  // drains the shards' history streams into PostgreSQL, off the handling path (a database that
  // is down only grows the streams; a busy machine makes the history lag, not the handling).
  const history: ArchiverProcess | undefined =
    config.archiveDatabaseUrl === undefined
      ? undefined
      : new ArchiverProcess({
          start: {
            redis: { redisUrl: config.redisUrl, redisClusterNodes: config.redisClusterNodes },
            queue: {
              queueName: config.queueName,
              queuePrefix: config.queuePrefix,
              queueShards: config.queueShards,
            },
            databaseUrl: config.archiveDatabaseUrl,
            retentionDays: config.archiveRetentionDays,
            consumer: `${hostname()}-${process.pid}`,
            logLevel: config.logLevel,
          },
          logger,
        });
  if (history !== undefined) registerHistoryMetrics(registry, () => history.snapshot());
  // Started beside the worker, not after it: the archiver waits for Redis and PostgreSQL itself.
  history?.start();
  let closing: Promise<void> | undefined;
  const ready = worker.start();
  return {
    registry,
    ready,
    logReady(description) {
      if (closing !== undefined) return;
      logger.info(
        {
          queue: config.queueName,
          shards: config.queueShards,
          concurrency: config.concurrency,
          queuePath: path.kind,
          handlers: description,
          metricsPort: config.metricsPort,
          history: history === undefined ? 'off' : 'on',
          tracing: tracing !== undefined,
        },
        'Worker ready',
      );
    },
    close(graceMs = config.shutdownGraceMs) {
      closing ??= (async () => {
        await worker.close(graceMs);
        await history?.close();
        await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
        // The spans still buffered go out before the process does.
        await tracing
          ?.shutdown()
          .catch((error: unknown) => logger.warn({ err: error }, 'tracing flush'));
      })();
      return closing;
    },
  };
}

/** The metrics server, on loopback by default: the metrics name the Node version, memory, depths. */
function listen(registry: Registry, port: number, host: string): Promise<Server> {
  const server = createServer(metricsListener(registry));
  return new Promise((resolve, reject) => {
    server.once('error', (error) => {
      reject(
        new MetricsPortError(
          `Cannot listen on WORKER_METRICS_PORT ${port} (WORKER_METRICS_HOST ${host}): ${error.message}`,
        ),
      );
    });
    server.listen(port, host, () => resolve(server));
  });
}
