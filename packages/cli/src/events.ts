import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type EventFilters,
  type EventHistory,
  type EventList,
  FilterError,
  filtersJson,
  HistoryStore,
  migrate,
  openHistoryPool,
  parseFilters,
  type RawFilters,
  type ReplayResult,
  replayEvents,
} from '@groq-webhooks/archive';
import {
  ARCHIVE_URL_FILE,
  type CliConfig,
  databaseLocation,
  localStateDir,
} from '@groq-webhooks/config';
import { HistoryWriter, openQueues } from '@groq-webhooks/queue';
import { withRedis } from './admin.js';
import { indent, table, truncate } from './format.js';
import { CliError, type CliIo, EXIT } from './io.js';
import { confirmOrRefuse, progressBar } from './progress.js';

/** How long the CLI waits for the history database before saying it is unreachable. */
export const DATABASE_CONNECT_TIMEOUT_MS = 3000;

/** The line printed when the history is off. */
export const HISTORY_OFF =
  'event history is off: set ARCHIVE_DATABASE_URL to a PostgreSQL URL (pnpm start sets one up locally)';

/**
 * The history database: `ARCHIVE_DATABASE_URL`, else the local one a running (or past)
 * `pnpm start` noted in `.local/archive-url`. Throws the one-line {@link HISTORY_OFF} error.
 */
export function historyDatabaseUrl(config: CliConfig, io: CliIo): string {
  if (config.archiveDatabaseUrl !== undefined) return config.archiveDatabaseUrl;
  const dir = localStateDir(io.env, io.cwd);
  const file = dir === undefined ? undefined : join(dir, ARCHIVE_URL_FILE);
  if (file !== undefined && existsSync(file)) {
    const url = readFileSync(file, 'utf8').trim();
    if (url.length > 0) return url;
  }
  throw new CliError(HISTORY_OFF, EXIT.failed);
}

/** Converts flags to filters; a bad value is a usage error naming the flag. */
export function cliFilters(raw: RawFilters): EventFilters {
  try {
    return parseFilters(raw);
  } catch (error) {
    if (error instanceof FilterError) {
      const flag = error.field === 'idPrefix' ? 'id-prefix' : error.field;
      throw new CliError(`--${flag} ${error.problem}`, EXIT.usage);
    }
    throw error;
  }
}

/**
 * Connects to the history database (bringing its schema up to date), runs `work`, closes.
 * An unreachable database or a failed query ends as one line naming where it is.
 */
export async function withHistory<T>(
  url: string,
  work: (store: HistoryStore) => Promise<T>,
): Promise<T> {
  const pool = openHistoryPool(url, {
    max: 2,
    applicationName: 'groq-webhooks-cli',
    connectTimeoutMs: DATABASE_CONNECT_TIMEOUT_MS,
  });
  const where = databaseLocation(url);
  try {
    try {
      await migrate(pool);
    } catch (error) {
      throw new CliError(`history database not usable at ${where}: ${reason(error)}`, EXIT.failed, {
        cause: error,
      });
    }
    try {
      return await work(new HistoryStore(pool));
    } catch (error) {
      if (error instanceof CliError) throw error;
      throw new CliError(`history query failed (${where}): ${reason(error)}`, EXIT.failed, {
        cause: error,
      });
    }
  } finally {
    await pool.end().catch(() => {});
  }
}

/** Human table of archived events. */
export function renderEventList(list: EventList, width: number): string {
  if (list.events.length === 0) return 'no events match';
  const header = ['EVENT ID', 'TYPE', 'STATUS', 'ATTEMPTS', 'DELIVERIES', 'RECEIVED', 'LAST ERROR'];
  const rows = list.events.map((event) => [
    event.eventId,
    event.type,
    event.status,
    String(event.attempts),
    event.duplicates > 0
      ? `${event.deliveries} (${event.duplicates} dup)`
      : String(event.deliveries),
    event.receivedAt,
    event.lastError ?? '',
  ]);
  const fixed = header
    .slice(0, -1)
    .map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)) + 2)
    .reduce((a, b) => a + b, 0);
  const fitted = rows.map((row) => [
    ...row.slice(0, -1),
    truncate(row[6] ?? '', Math.max(20, width - fixed)),
  ]);
  const footer = list.more
    ? `\n${list.events.length} events shown, newest first; more match (--limit N, or narrow the filters)`
    : `\n${list.events.length} event${list.events.length === 1 ? '' : 's'}`;
  return table(header, fitted) + footer;
}

/** Human view of one archived event: facts, payload, deliveries, attempts. */
export function renderEventHistory(event: EventHistory): string {
  const facts: [string, string][] = [
    ['event', event.eventId],
    ['type', event.type],
    ['status', event.status],
    ['created', event.created || '-'],
    ['received', event.receivedAt],
    ['key index', event.keyIndex === null ? '-' : String(event.keyIndex)],
    ['deliveries', `${event.deliveries} (${event.duplicates} duplicate)`],
    ['attempts', String(event.attempts)],
  ];
  const width = Math.max(...facts.map(([label]) => label.length));
  const lines = facts.map(([label, value]) => `${label.padEnd(width)}  ${value}`);
  lines.push('', 'payload (as received):', indent(prettyPayload(event.payload), '  '));
  lines.push('', 'deliveries:');
  for (const delivery of event.deliveryList) {
    const key = delivery.keyIndex === null ? '' : `, key ${delivery.keyIndex}`;
    lines.push(`  ${delivery.receivedAt}  ${delivery.outcome}${key}`);
  }
  lines.push('', event.attemptList.length === 0 ? 'no attempts archived yet' : 'attempts:');
  for (const a of event.attemptList) {
    const replay = a.replayId === null ? '' : `  replay ${a.replayId}`;
    lines.push(
      `  #${a.attempt}  ${a.startedAt}  ${a.durationMs} ms  ${a.outcome}  ${a.worker}${replay}`,
    );
    if (a.error !== null) lines.push(`      ${a.errorType ?? 'Error'}: ${a.error}`);
  }
  return lines.join('\n');
}

function prettyPayload(payload: string | null): string {
  if (payload === null) return '(not archived yet)';
  try {
    return JSON.stringify(JSON.parse(payload), null, 2);
  } catch {
    return payload;
  }
}

/** Options of {@link runReplay}. */
export interface ReplayCommand {
  filters: EventFilters;
  limit: number | undefined;
  dryRun: boolean;
  yes: boolean;
}

/** How many ids `--dry-run` shows. */
const DRY_RUN_IDS = 10;

/**
 * `events replay`: counts the matching events; `--dry-run` prints the count and the first ids
 * and stops; otherwise asks (or needs `--yes`), enqueues them as a new replay with a progress
 * bar on a terminal, and prints a summary.
 */
export async function runReplay(
  config: CliConfig,
  io: CliIo,
  command: ReplayCommand,
): Promise<ReplayResult | undefined> {
  const url = historyDatabaseUrl(config, io);
  return withHistory(url, async (store) => {
    const matching = await store.count(command.filters);
    const total = Math.min(matching, command.limit ?? matching);
    const described = describeFilters(command.filters, command.limit);
    if (total === 0) {
      io.stdout.write(`no events match ${described}\n`);
      return undefined;
    }
    if (command.dryRun) {
      const first = await store.replayPage(
        command.filters,
        undefined,
        Math.min(DRY_RUN_IDS, total),
      );
      io.stdout.write(`dry run: ${total} events match ${described}; nothing was enqueued\n`);
      io.stdout.write(`first ${first.length} (oldest first):\n`);
      for (const event of first) {
        io.stdout.write(`  ${event.eventId}  ${event.type}  ${event.receivedAt.toISOString()}\n`);
      }
      return undefined;
    }
    await confirmOrRefuse(
      io,
      command.yes,
      `replay ${total} events`,
      `Replay ${total} events ${described}? Each runs again, even if it was handled.`,
    );
    return withRedis(config, async (client) => {
      const queues = openQueues(client, config);
      for (const queue of queues) queue.on('error', () => {});
      const bar = progressBar(io, 'replay');
      try {
        const result = await replayEvents(
          { store, queues, writer: new HistoryWriter({ client, settings: config }) },
          {
            filters: command.filters,
            ...(command.limit === undefined ? {} : { limit: command.limit }),
            onProgress: bar.update,
          },
        );
        bar.stop();
        const durationMs = Math.max(result.durationMs, 1);
        const rate = Math.round((result.enqueued * 1000) / durationMs).toLocaleString('en-US');
        // A short replay in seconds would read "0.0 s".
        const took =
          durationMs < 1000
            ? `${Math.round(durationMs)} ms`
            : `${(durationMs / 1000).toFixed(1)} s`;
        const skipped =
          result.skipped > 0 ? `; ${result.skipped} skipped (no payload archived)` : '';
        io.stdout.write(
          `replayed ${result.enqueued} of ${result.matched} events as ${result.replayId} in ${took} (${rate} events/s)${skipped}\n`,
        );
        return result;
      } finally {
        bar.stop();
        await Promise.all(queues.map((queue) => queue.close().catch(() => {})));
      }
    });
  });
}

function describeFilters(filters: EventFilters, limit: number | undefined): string {
  const parts = Object.entries(filtersJson(filters)).map(([key, value]) => `${key}=${value}`);
  if (limit !== undefined) parts.push(`limit=${limit}`);
  return parts.length === 0 ? '(no filter: every archived event)' : `(${parts.join(', ')})`;
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
