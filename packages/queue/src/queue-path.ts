import type { FastPathConfig, JobConfig, QueueFastPathMode } from '@groq-webhooks/config';
import { type BatchWriter, type DeliveryHistory, StockBatchWriter } from './batch-writer.js';
import { type RedisClient, type RedisSettings, usesCluster } from './connection.js';
import { checkReviewedScripts, createFastPath } from './fast-path/index.js';
import { type EventLedger, StockLedger } from './idempotency.js';

/**
 * How a process talks to BullMQ, chosen once at start: the stock path (BullMQ's public API and
 * one command per idempotency step) or the fast path (`fast-path/`). The producer's batch and
 * the worker's idempotency ledger come from it, so nothing else branches on the choice.
 */
export interface QueuePath {
  readonly kind: 'fast' | 'stock';
  /**
   * The producer's lookup-and-add of one shard's batch over `client`; with `history`, each
   * delivery is recorded in the event history as well.
   */
  batchWriter(
    client: RedisClient,
    settings: JobConfig,
    options: { maxInFlight: number; history: DeliveryHistory | undefined },
  ): BatchWriter;
  /** The worker's idempotency ledger over `client` (and its BullMQ backend, on the fast path). */
  ledger(client: RedisClient, options: { doneTtlSeconds: number }): EventLedger;
}

/** BullMQ's stock path: works on any BullMQ and on a Redis Cluster. */
export const STOCK_PATH: QueuePath = {
  kind: 'stock',
  batchWriter: (client, _settings, options) => new StockBatchWriter(client, options.history),
  ledger: (client, options) => new StockLedger(client, options),
};

/** `QUEUE_FAST_PATH=on` and the fast path cannot be used: the process must not start. */
export class FastPathUnavailableError extends Error {
  override name = 'FastPathUnavailableError';
}

/** The path a process runs on, and the one warning line to log when it fell back. */
export interface QueuePathChoice {
  readonly path: QueuePath;
  /** Set when the fast path was wanted (`auto`) but cannot be used: says why. */
  readonly warning: string | undefined;
}

/**
 * Chooses the path for `QUEUE_FAST_PATH`: `off` → stock; `auto` → fast when the connection is a
 * single Redis and BullMQ's scripts are the reviewed ones, else stock with a warning saying why;
 * `on` → fast, or {@link FastPathUnavailableError}. Never throws otherwise.
 */
export async function chooseQueuePath(
  mode: QueueFastPathMode,
  client: Pick<RedisClient, 'isCluster'>,
): Promise<QueuePathChoice> {
  if (mode === 'off') return { path: STOCK_PATH, warning: undefined };
  let reason: string;
  if (client.isCluster) {
    reason = 'the connection is a Redis Cluster (the fast path needs a single Redis)';
  } else {
    const check = await checkReviewedScripts();
    if (check.ok) return { path: createFastPath(check.scripts), warning: undefined };
    reason = check.reason;
  }
  if (mode === 'on') {
    throw new FastPathUnavailableError(`QUEUE_FAST_PATH=on, but ${reason}`);
  }
  return {
    path: STOCK_PATH,
    warning: `Running without the queue fast path: ${reason}; using BullMQ's stock path`,
  };
}

/**
 * {@link chooseQueuePath} for a parsed configuration, the fallback's warning handed to `warn`
 * (one line). Throws {@link FastPathUnavailableError} when `QUEUE_FAST_PATH=on` cannot be met.
 */
export async function queuePathFor(
  config: FastPathConfig & RedisSettings,
  warn: (line: string) => void,
): Promise<QueuePath> {
  const choice = await chooseQueuePath(config.queueFastPath, { isCluster: usesCluster(config) });
  if (choice.warning !== undefined) warn(choice.warning);
  return choice.path;
}

/**
 * For a process entry point: {@link queuePathFor}, but when `QUEUE_FAST_PATH=on` cannot be met,
 * prints the one line saying why and exits with status 1.
 */
export async function queuePathOrExit(
  config: FastPathConfig & RedisSettings,
  warn: (line: string) => void,
): Promise<QueuePath> {
  try {
    return await queuePathFor(config, warn);
  } catch (error) {
    if (!(error instanceof FastPathUnavailableError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
}
