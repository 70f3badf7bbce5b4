import type { CliConfig } from '@groq-webhooks/config';
import {
  closeRedis,
  createRedis,
  type EventDetail,
  FailedEvents,
  type FailedList,
  type FailedOperationOutcome,
  type QueueStats,
  type RedisClient,
  waitForRedis,
} from '@groq-webhooks/queue';
import { duration, indent, table, truncate } from './format.js';
import { CliError, type CliIo, EXIT } from './io.js';
import { confirmOrRefuse, progressBar } from './progress.js';

/** How long the CLI waits for Redis before saying it is unreachable. */
export const REDIS_CONNECT_TIMEOUT_MS = 3000;

/** Where Redis is, for messages: host and port only, never credentials. */
export function redisLocation(config: CliConfig): string {
  const nodes = config.redisClusterNodes;
  if (nodes !== undefined && nodes.length > 0) {
    return `the Redis Cluster at ${nodes.map((n) => `${n.host}:${n.port}`).join(',')} (REDIS_CLUSTER_NODES)`;
  }
  try {
    const url = new URL(config.redisUrl);
    return `${url.hostname}:${url.port || '6379'} (REDIS_URL)`;
  } catch {
    return 'REDIS_URL';
  }
}

/**
 * Opens an admin Redis connection, runs `work` with it, and closes it, whatever happens. An
 * unreachable Redis or a failing command ends as one {@link CliError} line naming where Redis is.
 */
export async function withRedis<T>(
  config: CliConfig,
  work: (client: RedisClient) => Promise<T>,
): Promise<T> {
  const client = createRedis(config, 'admin', 'groq-webhooks-cli');
  // Say why it did not connect (refused, auth, DNS); ioredis messages carry no credentials.
  let lastError: string | undefined;
  client.on('error', (error: Error) => {
    lastError = error.message;
  });
  try {
    if (!(await waitForRedis(client, REDIS_CONNECT_TIMEOUT_MS))) {
      const why = lastError === undefined ? '' : ` (${lastError})`;
      throw new CliError(
        `Redis unreachable at ${redisLocation(config)}: no connection within ${REDIS_CONNECT_TIMEOUT_MS / 1000} s${why}`,
      );
    }
    try {
      return await work(client);
    } catch (error) {
      if (error instanceof CliError) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      throw new CliError(
        `Redis operation failed (${redisLocation(config)}): ${reason}`,
        EXIT.failed,
        {
          cause: error,
        },
      );
    }
  } finally {
    await closeRedis(client);
  }
}

/** Opens an admin connection, runs `work`, and closes everything, whatever happens. */
export function withFailedEvents<T>(
  config: CliConfig,
  work: (admin: FailedEvents) => Promise<T>,
): Promise<T> {
  return withRedis(config, async (client) => {
    const admin = new FailedEvents({ client, settings: config });
    try {
      return await work(admin);
    } finally {
      await admin.close().catch(() => {});
    }
  });
}

/** Human table of failed events. */
export function renderList(list: FailedList, width: number): string {
  if (list.total === 0) return 'no failed events';
  const rows = list.events.map((event) => [
    event.eventId,
    event.type,
    String(event.attempts),
    event.failedAt ?? '-',
    event.lastError,
  ]);
  const header = ['EVENT ID', 'TYPE', 'ATTEMPTS', 'FAILED AT', 'LAST ERROR'];
  // Fit the error column to the terminal; other columns are short.
  const fixed = header
    .slice(0, -1)
    .map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)) + 2)
    .reduce((a, b) => a + b, 0);
  const errorWidth = Math.max(30, width - fixed);
  const fitted = rows.map((row) => [...row.slice(0, -1), truncate(row[4] ?? '', errorWidth)]);
  const shown =
    list.events.length < list.total
      ? `\n${list.events.length} of ${list.total} failed events (newest first; --limit N for more)`
      : `\n${list.total} failed event${list.total === 1 ? '' : 's'}`;
  return table(header, fitted) + shown;
}

/** Human view of one event: facts, payload, then every attempt's error and stack. */
export function renderDetail(detail: EventDetail): string {
  const facts: [string, string][] = [
    ['event', detail.eventId],
    ['type', detail.type],
    ['state', detail.state],
    ['attempts', `${detail.attempts} of ${detail.maxAttempts}`],
    ['created', detail.payload?.created ?? '-'],
    ['received', detail.receivedAt],
    ['failed at', detail.failedAt ?? '-'],
    ['last error', detail.lastError || '-'],
    ['job', `${detail.jobId} (shard ${detail.shard})`],
  ];
  const width = Math.max(...facts.map(([label]) => label.length));
  const lines = facts.map(([label, value]) => `${label.padEnd(width)}  ${value}`);
  const payload =
    detail.payload === null
      ? `(cannot be shown: ${detail.payloadProblem ?? 'unknown reason'})`
      : JSON.stringify(detail.payload, null, 2);
  lines.push('', 'payload:', indent(payload, '  '));
  lines.push('', detail.failures.length === 0 ? 'no attempt errors recorded' : 'attempts:');
  for (const failure of detail.failures) {
    lines.push(`  attempt ${failure.attempt}: ${failure.error}`);
    const stack = failure.stack.split('\n').slice(1).join('\n');
    if (stack.trim().length > 0) lines.push(indent(stack.replace(/^\s+/gm, ''), '      '));
  }
  return lines.join('\n');
}

/** Human view of the counts. */
export function renderStats(stats: QueueStats): string {
  const rows: [string, string][] = Object.entries(stats.counts).map(([state, count]) => [
    state,
    String(count),
  ]);
  rows.push([
    'oldest waiting',
    stats.oldestWaitingSeconds === null ? '-' : duration(stats.oldestWaitingSeconds),
  ]);
  // Part of `delayed`: put back for a moment while another event of their resource runs.
  rows.push(['waiting on a busy resource', String(stats.waitingOnResource)]);
  const width = Math.max(...rows.map(([label]) => label.length));
  const countWidth = Math.max(...rows.map(([, value]) => value.length));
  const lines = rows.map(
    ([label, value]) => `${label.padEnd(width)}  ${value.padStart(countWidth)}`,
  );
  if (stats.pausedShards.length > 0) {
    const names = stats.shards.filter((shard) => shard.paused).map((shard) => shard.name);
    lines.push('', `paused: ${names.join(', ')} (waiting jobs are not taken until resumed)`);
  }
  if (stats.shards.length > 1) {
    lines.push('', 'per shard:');
    const states = Object.keys(stats.counts);
    lines.push(
      indent(
        table(
          ['QUEUE', ...states.map((s) => s.toUpperCase())],
          stats.shards.map((shard) => [
            shard.name,
            ...states.map((s) => String(shard.counts[s as keyof typeof shard.counts])),
          ]),
        ),
        '  ',
      ),
    );
  }
  return lines.join('\n');
}

/** Turns a single-event outcome into output or a {@link CliError}. */
export async function reportOutcome(
  outcome: FailedOperationOutcome,
  eventId: string,
  done: string,
  admin: FailedEvents,
  io: CliIo,
): Promise<void> {
  if (outcome === 'ok') {
    io.stdout.write(`${done}\n`);
    return;
  }
  if (outcome === 'not_found') throw unknownEvent(eventId);
  const state = (await admin.show(eventId))?.state ?? 'gone';
  throw new CliError(`event ${eventId} is ${state}, not failed: nothing done`);
}

/** The error for an event id with no job. */
export function unknownEvent(eventId: string): CliError {
  return new CliError(
    `no job for event ${eventId} (unknown id, or it completed and was trimmed, or was removed)`,
  );
}

/**
 * Runs a bulk operation with a confirmation on a terminal (unless `yes`) and a progress bar on
 * a terminal. Without a terminal and without `yes` it refuses: a script must say `--yes`.
 */
export async function bulk(
  admin: FailedEvents,
  io: CliIo,
  options: { yes: boolean; verb: string; past: string },
  run: (onProgress: (done: number, total: number) => void) => ReturnType<FailedEvents['retryAll']>,
): Promise<void> {
  const { total } = await admin.list({ limit: 0 });
  if (total === 0) {
    io.stdout.write('no failed events\n');
    return;
  }
  await confirmOrRefuse(
    io,
    options.yes,
    `${options.verb} all ${total} failed events`,
    `${capitalize(options.verb)} all ${total} failed events?`,
  );
  const bar = progressBar(io, options.verb);
  const result = await run(bar.update);
  bar.stop();
  const skipped =
    result.skipped > 0 ? ` (${result.skipped} skipped: no longer failed, or locked)` : '';
  io.stdout.write(`${options.past} ${result.done} of ${result.total} failed events${skipped}\n`);
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
