// The event history's archiver, in a process of its own (started by the worker, never by hand):
// it drains the history streams into PostgreSQL at a lower CPU priority than the worker, so
// that on a busy machine the scheduler gives handling the CPU first and the history lags
// instead (docs/history.md). It stops when asked, on SIGTERM or SIGINT, and when the worker
// that started it is gone (its IPC channel closes, however the worker ended).
import { setPriority } from 'node:os';
import {
  archiverSnapshot,
  createHistoryService,
  type HistoryService,
} from '@groq-webhooks/archive';
import { closeRedis, createRedis } from '@groq-webhooks/queue';
import { createLogger, flushAndExit, type Logger } from '@groq-webhooks/telemetry';
import type { ArchiverReply, ArchiverRequest, ArchiverStart } from './archiver-process.js';

let logger: Logger | undefined;
let service: HistoryService | undefined;
let stopping = false;

function send(reply: ArchiverReply): void {
  if (process.connected) process.send?.(reply);
}

function start(message: ArchiverStart): void {
  logger = createLogger({ service: 'worker-archiver', level: message.logLevel });
  try {
    setPriority(message.niceness);
  } catch (error) {
    logger.warn(
      { err: { message: (error as Error).message }, niceness: message.niceness },
      'Could not lower the archiver’s CPU priority; it runs at the worker’s',
    );
  }
  service = createHistoryService({
    databaseUrl: message.databaseUrl,
    retentionDays: message.retentionDays,
    redis: createRedis(message.redis, 'worker', 'groq-webhooks-archiver'),
    settings: message.queue,
    logger,
    consumer: message.consumer,
    closeRedis,
  });
  service.start();
}

/**
 * The longest a stop waits for the batch in hand and for Redis and PostgreSQL to close: when its
 * worker is gone, they may be gone too, and their clients would keep trying to reconnect. A batch
 * cut short is archived again (idempotently) by the archiver that takes its entries over.
 */
const STOP_DEADLINE_MS = 5000;

async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(0), STOP_DEADLINE_MS).unref();
  await service?.close();
  process.disconnect?.();
  if (logger === undefined) process.exit(0);
  flushAndExit(logger, 0);
}

process.on('message', (message: ArchiverRequest) => {
  if (message.type === 'start' && service === undefined && !stopping) start(message);
  else if (message.type === 'snapshot') {
    const archiver = service?.archiver;
    if (archiver === undefined) send({ type: 'snapshot', id: message.id, snapshot: undefined });
    else {
      void archiverSnapshot(archiver).then((snapshot) =>
        send({ type: 'snapshot', id: message.id, snapshot }),
      );
    }
  } else if (message.type === 'stop') void stop();
});
process.on('disconnect', () => void stop());
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
