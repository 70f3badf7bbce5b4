import {
  type IngestAppConfig,
  type IngestSettings,
  loadIngestSettings,
} from '@groq-webhooks/config';
import {
  closeRedis,
  createRedis,
  EventProducer,
  isRedisReady,
  type QueuePath,
  queuePathFor,
  storedTrace,
} from '@groq-webhooks/queue';
import {
  createLogger,
  type Logger,
  type Registry,
  startTracing,
  type Tracing,
} from '@groq-webhooks/telemetry';
import type { Hono } from 'hono';
import { BodyBudget } from './body-budget.js';
import { createIngestMetrics } from './metrics.js';
import type { IngestEnv, WebhookDeps } from './types.js';
import { createWebhookApp } from './webhook.js';

/**
 * Settings of {@link createIngest}: the ingest's environment variables in camelCase
 * (`GROQ_WEBHOOK_SECRET` is `secrets`); any not given is read from `process.env`.
 */
export type CreateIngestOptions = IngestSettings;

/** A webhook receiver to mount in your own Hono server. */
export interface Ingest {
  /**
   * Answers `POST` on its own root (SPEC §4): mount it where senders deliver, e.g.
   * `app.route('/webhooks/groq', ingest.app)`.
   */
  readonly app: Hono<IngestEnv>;
  /** The ingest's Prometheus metrics (requests by outcome, enqueue latency), to serve yourself. */
  readonly registry: Registry;
  /** Whether Redis answers now, for your readiness probe. */
  isReady(): Promise<boolean>;
  /**
   * Stops enqueuing, closes the Redis connection and sends the spans still buffered (tracing).
   * Stop your server from accepting first.
   */
  close(): Promise<void>;
}

/** The ingest's Redis wiring, shared by {@link createIngest} and the `groq-webhooks-ingest` bin. */
export interface IngestParts {
  /** What the webhook receiver needs (and, with `isReady`, the standalone app). */
  readonly deps: WebhookDeps;
  isReady(): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * Opens the producer side of the queue for a parsed configuration. The Redis client connects in
 * the background: until it does, webhooks get 503 and `isReady` is false. With `tracing` (the
 * OpenTelemetry environment asked for it: `startTracing`), every request is traced, and closing
 * flushes its spans.
 */
export function openIngest(
  config: IngestAppConfig,
  logger: Logger,
  path: QueuePath,
  tracing?: Tracing,
): IngestParts {
  const client = createRedis(config, 'producer');
  const metrics = createIngestMetrics();
  let lastHistoryWarning = 0;
  const producer = new EventProducer({
    client,
    settings: config,
    path,
    // With ARCHIVE_DATABASE_URL set, every delivery is recorded for the event history.
    ...(config.archiveDatabaseUrl === undefined
      ? {}
      : {
          history: {
            onError(error: unknown) {
              metrics.countHistoryFailure();
              if (Date.now() - lastHistoryWarning < 5000) return;
              lastHistoryWarning = Date.now();
              logger.warn({ err: error }, 'A delivery record of the event history was not written');
            },
          },
        }),
  });
  let closing: Promise<void> | undefined;
  return {
    deps: {
      producer,
      secrets: config.secrets,
      toleranceSeconds: config.toleranceSeconds,
      maxBodyBytes: config.maxBodyBytes,
      enqueueTimeoutMs: config.enqueueTimeoutMs,
      logger,
      metrics,
      bodyBudget: new BodyBudget(config.maxInflightBodyBytes),
      maxJsonDepth: config.maxJsonDepth,
      tracing: tracing && {
        tracer: tracing.tracer,
        storedTrace: (eventId) => storedTrace(client, config, eventId),
      },
    },
    isReady: () => isRedisReady(client),
    close() {
      closing ??= (async () => {
        await producer
          .close()
          .catch((error: unknown) => logger.warn({ err: error }, 'queue close'));
        await closeRedis(client);
        // The spans still buffered go out before the process does.
        await tracing
          ?.shutdown()
          .catch((error: unknown) => logger.warn({ err: error }, 'tracing flush'));
      })();
      return closing;
    },
  };
}

/**
 * Creates a webhook receiver for your own Hono server, configured like the
 * `groq-webhooks-ingest` bin: settings given here win, the rest come from `process.env`.
 * Throws `ConfigError` (one line naming the setting and its variable) on a bad value, and
 * `FastPathUnavailableError` when `queueFastPath: 'on'` cannot be met.
 * Resolves at once, also while Redis is down: webhooks then get 503 until it answers.
 * @example const ingest = await createIngest({ secrets: [process.env.GROQ_WEBHOOK_SECRET] });
 *   app.route('/webhooks/groq', ingest.app);
 */
export async function createIngest(options: CreateIngestOptions = {}): Promise<Ingest> {
  // Reading process.env is this function's contract: the bin and the API share one loader.
  const config = loadIngestSettings(options, process.env);
  const logger = createLogger({ service: 'ingest', level: config.logLevel });
  const path = await queuePathFor(config, (line) => logger.warn(line));
  // As the bin: tracing when the standard OpenTelemetry variables ask for it (docs/tracing.md).
  const tracing = await startTracing({ env: process.env, service: 'ingest', asyncContext: false });
  const parts = openIngest(config, logger, path, tracing);
  return {
    app: createWebhookApp(parts.deps),
    registry: parts.deps.metrics.registry,
    isReady: parts.isReady,
    close: parts.close,
  };
}
