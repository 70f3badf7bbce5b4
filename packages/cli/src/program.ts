import { type CliConfig, ConfigError, loadCliConfig } from '@groq-webhooks/config';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import {
  bulk,
  renderDetail,
  renderList,
  renderStats,
  reportOutcome,
  unknownEvent,
  withFailedEvents,
} from './admin.js';
import {
  cliFilters,
  historyDatabaseUrl,
  renderEventHistory,
  renderEventList,
  runReplay,
  withHistory,
} from './events.js';
import { CliError, type CliIo, EXIT } from './io.js';
import { readDevSecret } from './secret.js';
import { allDelivered, runTrigger } from './trigger.js';

/** Parses a whole number within bounds, as commander option values. */
function integer(min: number, max: number): (value: string) => number {
  return (value) => {
    if (!/^[0-9]+$/.test(value)) throw new InvalidArgumentError(`must be a whole number`);
    const parsed = Number(value);
    if (parsed < min || parsed > max) {
      throw new InvalidArgumentError(`must be between ${min} and ${max}`);
    }
    return parsed;
  };
}

/** Parses `--data`: a JSON object (the envelope's `data` is always one). */
function jsonObject(value: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new InvalidArgumentError(`is not valid JSON (${reason})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new InvalidArgumentError('must be a JSON object, e.g. \'{"id":"res_1"}\'');
  }
  return parsed as Record<string, unknown>;
}

function loadConfig(io: CliIo): CliConfig {
  try {
    return loadCliConfig(io.env);
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message, EXIT.usage);
    throw error;
  }
}

/** The signing secret: --secret, else GROQ_WEBHOOK_SECRET's first entry, else the dev secret. */
function signingSecret(explicit: string | undefined, config: CliConfig, io: CliIo): string {
  if (explicit !== undefined) {
    if (explicit.length === 0) throw new CliError('--secret must not be empty', EXIT.usage);
    return explicit;
  }
  const configured = config.secrets[0];
  if (configured !== undefined) return configured;
  const local = readDevSecret(io.env, io.cwd);
  if (local !== undefined) return local.secret;
  throw new CliError(
    'no signing secret: pass --secret, set GROQ_WEBHOOK_SECRET, or run `pnpm start` once to create .local/dev-secret',
    EXIT.usage,
  );
}

/** Exactly one of an event id and --all. */
function target(eventId: string | undefined, all: boolean, verb: string): string | undefined {
  if (all && eventId !== undefined) {
    throw new CliError(`give an event id or --all, not both`, EXIT.usage);
  }
  if (!all && eventId === undefined) {
    throw new CliError(`missing event id: failed ${verb} <eventId> (or --all)`, EXIT.usage);
  }
  return eventId;
}

function print(io: CliIo, text: string): void {
  io.stdout.write(`${text}\n`);
}

function printJson(io: CliIo, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Builds the `groq-webhooks` command tree over `io`. Side-effect free: nothing is read, written
 * or connected until it is parsed. Usage errors surface as `CommanderError`s (see {@link run}).
 */
export function createProgram(io: CliIo): Command {
  const program = new Command('groq-webhooks')
    .description(
      'Send signed test events to the ingest, and inspect, retry or remove failed events.',
    )
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      outputError: (text, write) => write(text),
    })
    .addHelpText(
      'after',
      '\nExit codes: 0 ok, 1 the operation failed, 2 usage or configuration error.\n' +
        'Redis and queue settings come from the environment (REDIS_URL, QUEUE_NAME, QUEUE_PREFIX, QUEUE_SHARDS).',
    );

  program
    .command('trigger')
    .description('sign and send test events to the ingest, like the Groq sender does')
    .argument('<type>', 'event type, e.g. resource.created (unknown types are sent as well)')
    .option(
      '--url <url>',
      'ingest endpoint (default: http://127.0.0.1:$PORT/webhooks/groq, PORT default 3000)',
    )
    .option(
      '--secret <secret>',
      'signing secret (default: first GROQ_WEBHOOK_SECRET entry, else .local/dev-secret)',
    )
    .option('--data <json>', 'the event data, a JSON object', jsonObject, {})
    .option('--id <id>', 'event id (default: evt_ + random); with --count N: <id>-1 … <id>-N')
    .option('--count <n>', 'number of events to send', integer(1, 1_000_000), 1)
    .option('--concurrency <n>', 'requests in flight at once', integer(1, 1000), 10)
    .addHelpText(
      'after',
      '\nPrints status and body per request; with --count a progress bar (on a terminal) and a summary line.\nExits 1 when any request got no 2xx answer.',
    )
    .action(async (type: string, options: TriggerFlags, command: Command) => {
      if (type.trim().length === 0) throw new CliError('event type must not be empty', EXIT.usage);
      const config = loadConfig(io);
      const url = options.url ?? `http://127.0.0.1:${config.port}/webhooks/groq`;
      if (!/^https?:\/\//.test(url)) {
        throw new CliError(`--url must be an http(s) URL, got ${url}`, EXIT.usage);
      }
      const countGiven = command.getOptionValueSource('count') === 'cli';
      const summary = await runTrigger(
        {
          type,
          url,
          secret: signingSecret(options.secret, config, io),
          data: options.data,
          id: options.id,
          count: options.count,
          concurrency: options.concurrency,
          summary: countGiven,
        },
        io,
      );
      if (!allDelivered(summary)) {
        // One request: its own line already said why. Several: the summary did.
        throw new CliError('', EXIT.failed);
      }
    });

  const failed = program
    .command('failed')
    .description('inspect, retry or remove events whose job failed for good')
    .addHelpText('after', '\nThe event id is the envelope id (the one the sender chose).');

  failed
    .command('list')
    .description('failed events, newest first: id, type, attempts, failed at, last error')
    .option('--limit <n>', 'show at most N', integer(1, 100_000), 20)
    .option('--json', 'print JSON ({total, events}) for scripts', false)
    .action(async (options: { limit: number; json: boolean }) => {
      const config = loadConfig(io);
      await withFailedEvents(config, async (admin) => {
        const list = await admin.list({ limit: options.limit });
        if (options.json) printJson(io, list);
        else print(io, renderList(list, io.stdout.columns ?? 120));
      });
    });

  failed
    .command('show')
    .description("one event: payload, state, and every attempt's error and stack")
    .argument('<eventId>', 'the event id')
    .option('--json', 'print JSON for scripts', false)
    .action(async (eventId: string, options: { json: boolean }) => {
      const config = loadConfig(io);
      await withFailedEvents(config, async (admin) => {
        const detail = await admin.show(eventId);
        if (detail === undefined) throw unknownEvent(eventId);
        if (options.json) printJson(io, detail);
        else print(io, renderDetail(detail));
      });
    });

  failed
    .command('retry')
    .description('put a failed event (or all) back in the queue with a fresh attempt budget')
    .argument('[eventId]', 'the event id')
    .option('--all', 'retry every failed event', false)
    .option('--yes', 'do not ask for confirmation (required for --all without a terminal)', false)
    .action(async (eventId: string | undefined, options: { all: boolean; yes: boolean }) => {
      const id = target(eventId, options.all, 'retry');
      const config = loadConfig(io);
      await withFailedEvents(config, async (admin) => {
        if (id === undefined) {
          await bulk(admin, io, { yes: options.yes, verb: 'retry', past: 'retried' }, (progress) =>
            admin.retryAll(progress),
          );
          return;
        }
        await reportOutcome(
          await admin.retry(id),
          id,
          `retried ${id}: back in the queue with a fresh budget of ${config.jobAttempts} attempts`,
          admin,
          io,
        );
      });
    });

  failed
    .command('remove')
    .description('delete a failed event (or all); other states are left alone')
    .argument('[eventId]', 'the event id')
    .option('--all', 'remove every failed event', false)
    .option('--yes', 'do not ask for confirmation (required for --all without a terminal)', false)
    .action(async (eventId: string | undefined, options: { all: boolean; yes: boolean }) => {
      const id = target(eventId, options.all, 'remove');
      const config = loadConfig(io);
      await withFailedEvents(config, async (admin) => {
        if (id === undefined) {
          await bulk(admin, io, { yes: options.yes, verb: 'remove', past: 'removed' }, (progress) =>
            admin.removeAll(progress),
          );
          return;
        }
        await reportOutcome(await admin.remove(id), id, `removed ${id}`, admin, io);
      });
    });

  program
    .command('stats')
    .description('jobs per state over all queue shards, and the oldest waiting age')
    .addOption(new Option('--json', 'print JSON for scripts').default(false))
    .action(async (options: { json: boolean }) => {
      const config = loadConfig(io);
      await withFailedEvents(config, async (admin) => {
        const stats = await admin.stats();
        if (options.json) printJson(io, stats);
        else print(io, renderStats(stats));
      });
    });

  const events = program
    .command('events')
    .description('the event history (needs ARCHIVE_DATABASE_URL): search, show, replay')
    .addHelpText(
      'after',
      '\nTimes are ISO-8601 (2026-11-28T14:00:00Z; without a zone: UTC) and filter on when the ingest first received the event.',
    );

  withFilters(
    events
      .command('list')
      .description('archived events, newest first: id, type, status, attempts, deliveries'),
  )
    .option('--limit <n>', 'show at most N', integer(1, 100_000), 50)
    .option('--json', 'print JSON ({events, more}) for scripts', false)
    .action(async (options: FilterFlags & { limit: number; json: boolean }) => {
      const config = loadConfig(io);
      const filters = cliFilters(options);
      await withHistory(historyDatabaseUrl(config, io), async (store) => {
        const list = await store.list(filters, options.limit);
        if (options.json) printJson(io, list);
        else print(io, renderEventList(list, io.stdout.columns ?? 120));
      });
    });

  events
    .command('show')
    .description('one archived event: payload as received, deliveries, attempts, status')
    .argument('<eventId>', 'the event id')
    .option('--json', 'print JSON for scripts', false)
    .action(async (eventId: string, options: { json: boolean }) => {
      const config = loadConfig(io);
      await withHistory(historyDatabaseUrl(config, io), async (store) => {
        const event = await store.show(eventId);
        if (event === undefined) {
          throw new CliError(`event ${eventId} is not in the history (unknown, or pruned)`);
        }
        if (options.json) printJson(io, event);
        else print(io, renderEventHistory(event));
      });
    });

  withFilters(
    events
      .command('replay')
      .description(
        'run the matching events again on purpose (oldest first), each once per replay, even if handled',
      ),
  )
    .option('--limit <n>', 'replay at most N (the oldest)', integer(1, 100_000_000))
    .option('--dry-run', 'print how many match and the first ids; change nothing', false)
    .option('--yes', 'do not ask for confirmation (required without a terminal)', false)
    .action(async (options: FilterFlags & { limit?: number; dryRun: boolean; yes: boolean }) => {
      const config = loadConfig(io);
      await runReplay(config, io, {
        filters: cliFilters(options),
        limit: options.limit,
        dryRun: options.dryRun,
        yes: options.yes,
      });
    });

  return program;
}

/** The filter flags `events list` and `events replay` share. */
interface FilterFlags {
  type?: string;
  status?: string;
  since?: string;
  until?: string;
  idPrefix?: string;
}

function withFilters(command: Command): Command {
  return command
    .option('--type <type>', 'event type, e.g. resource.updated')
    .option(
      '--status <status>',
      'received, retrying, completed, failed, skipped, unhandled or stale',
    )
    .option('--since <iso>', 'received at or after this time')
    .option('--until <iso>', 'received before this time')
    .option('--id-prefix <prefix>', 'event ids starting with this');
}

interface TriggerFlags {
  url?: string;
  secret?: string;
  data: Record<string, unknown>;
  id?: string;
  count: number;
  concurrency: number;
}

/**
 * Runs the CLI on `argv` (without node and script) and resolves with the exit code. Every
 * failure ends as at most one line on stderr: usage errors exit 2, failed operations 1.
 */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const program = createProgram(io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has printed its message (or the help) already.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (error instanceof CliError) {
      if (error.message.length > 0) io.stderr.write(`error: ${error.message}\n`);
      return error.exitCode;
    }
    const reason = error instanceof Error ? error.message : String(error);
    io.stderr.write(`error: ${reason}\n`);
    return EXIT.failed;
  }
}
