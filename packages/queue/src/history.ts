import type { RedisClient } from './connection.js';
import { type QueueSettings, type QueueShard, queueShards, shardOf } from './naming.js';

/**
 * The event history's outbox (issue 17): records appended to one Redis stream per queue shard,
 * drained into PostgreSQL by the archiver (`@groq-webhooks/archive`).
 *
 * The stream key carries the shard's hash tag, so a Lua script working on the shard's queue keys
 * may XADD to it in the same call (atomically with the enqueue or the job's finish). Whatever
 * writes a record, JavaScript ({@link HistoryWriter}) or Lua, follows {@link encodeHistoryRecord}:
 *
 * ```
 * XADD <prefix>:<queue>:history * v 1 kind delivery id <eventId> type <type> created <created>
 *      at <receivedAt ms> key <keyIndex> outcome received|duplicate|requeued [payload <text>]
 * XADD <prefix>:<queue>:history * v 1 kind attempt id <eventId> type <type> n <attempt>
 *      started <ms> ended <ms> worker <name> outcome <AttemptRecordOutcome>
 *      [error <message>] [errorType <name>] [replay <replayId>]
 * XADD <prefix>:<queue>:history * v 1 kind replay replay <replayId> filters <JSON> count <n>
 *      at <ms>
 * ```
 *
 * Every value is a string; times are Unix epoch milliseconds in decimal (Lua: `TIME`'s seconds
 * × 1000 + microseconds // 1000); optional fields are left out, never written empty. Readers
 * ignore fields they do not know, so later versions may add some without bumping `v`.
 */
export const HISTORY_FORMAT_VERSION = '1';

/** Suffix of a shard's history stream after its BullMQ key base `<prefix>:<queue>:`. */
export const HISTORY_STREAM_SUFFIX = 'history';

/** How the ingest answered one accepted request for an event. */
export const DELIVERY_OUTCOMES = ['received', 'duplicate', 'requeued'] as const;
/** One of {@link DELIVERY_OUTCOMES}. */
export type DeliveryOutcome = (typeof DELIVERY_OUTCOMES)[number];

/** How one attempt (one run of the worker's processor for a job) ended. */
export const ATTEMPT_OUTCOMES = [
  'completed',
  'retrying',
  'failed',
  'skipped',
  'unhandled',
  'stale',
] as const;
/** One of {@link ATTEMPT_OUTCOMES}. */
export type AttemptRecordOutcome = (typeof ATTEMPT_OUTCOMES)[number];

/** An accepted request for an event (written by the ingest). */
export interface DeliveryRecord {
  kind: 'delivery';
  eventId: string;
  type: string;
  /** The envelope's `created`, as sent. */
  created: string;
  /** When the ingest accepted the request, epoch ms. */
  receivedAt: number;
  /** Index of the receiver secret that verified it. */
  keyIndex: number;
  outcome: DeliveryOutcome;
  /** The envelope's JSON text exactly as received; for `received` and `requeued`. */
  payload?: string;
}

/** One attempt of the worker at an event's job (written by the worker). */
export interface AttemptRecord {
  kind: 'attempt';
  eventId: string;
  type: string;
  /** 1-based attempt number. */
  attempt: number;
  /** Epoch ms. */
  startedAt: number;
  /** Epoch ms. */
  endedAt: number;
  /** The worker's name (BullMQ worker name, e.g. `groq-worker-<pid>`). */
  worker: string;
  outcome: AttemptRecordOutcome;
  error?: string;
  errorType?: string;
  /** Set when the job is a replay: the replay command's id. */
  replayId?: string;
}

/** A replay command (written by `events replay`). */
export interface ReplayRecord {
  kind: 'replay';
  replayId: string;
  /** The filters it selected events by, as JSON. */
  filters: string;
  /** Events it enqueued. */
  count: number;
  /** Epoch ms. */
  requestedAt: number;
}

/** Any history record. */
export type HistoryRecord = DeliveryRecord | AttemptRecord | ReplayRecord;

/** The Redis stream holding one shard's history records. */
export function historyStreamKey(shard: QueueShard): string {
  return `${shard.prefix}:${shard.name}:${HISTORY_STREAM_SUFFIX}`;
}

/** The stream of every shard, in shard order. */
export function historyStreamKeys(settings: QueueSettings): string[] {
  return queueShards(settings).map(historyStreamKey);
}

/** The stream field/value list of a record, as XADD takes it after the id. */
export function encodeHistoryRecord(record: HistoryRecord): string[] {
  const fields = ['v', HISTORY_FORMAT_VERSION, 'kind', record.kind];
  switch (record.kind) {
    case 'delivery':
      fields.push('id', record.eventId, 'type', record.type, 'created', record.created);
      fields.push('at', ms(record.receivedAt), 'key', String(record.keyIndex));
      fields.push('outcome', record.outcome);
      if (record.payload !== undefined) fields.push('payload', record.payload);
      return fields;
    case 'attempt':
      fields.push('id', record.eventId, 'type', record.type, 'n', String(record.attempt));
      fields.push('started', ms(record.startedAt), 'ended', ms(record.endedAt));
      fields.push('worker', record.worker, 'outcome', record.outcome);
      if (record.error !== undefined) fields.push('error', record.error);
      if (record.errorType !== undefined) fields.push('errorType', record.errorType);
      if (record.replayId !== undefined) fields.push('replay', record.replayId);
      return fields;
    case 'replay':
      fields.push('replay', record.replayId, 'filters', record.filters);
      fields.push('count', String(record.count), 'at', ms(record.requestedAt));
      return fields;
  }
}

/** A stream entry that is not a record of this format; the archiver counts and drops it. */
export class MalformedHistoryRecord extends Error {
  override name = 'MalformedHistoryRecord';
}

/**
 * Reads a record from a stream entry's flat field/value list. Returns a
 * {@link MalformedHistoryRecord} (never throws) for anything that does not follow the format.
 */
export function decodeHistoryRecord(
  flat: readonly string[],
): HistoryRecord | MalformedHistoryRecord {
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) f.set(flat[i] as string, flat[i + 1] as string);
  const bad = (why: string) => new MalformedHistoryRecord(why);
  if (f.get('v') !== HISTORY_FORMAT_VERSION) return bad(`unknown version ${f.get('v')}`);
  const kind = f.get('kind');
  if (kind === 'replay') {
    const replayId = f.get('replay');
    const count = integer(f.get('count'));
    const requestedAt = integer(f.get('at'));
    if (!replayId || count === undefined || requestedAt === undefined) return bad('bad replay');
    return { kind, replayId, filters: f.get('filters') ?? '{}', count, requestedAt };
  }
  const eventId = f.get('id');
  const type = f.get('type');
  if (!eventId || type === undefined) return bad('missing id or type');
  if (kind === 'delivery') {
    const outcome = f.get('outcome');
    const receivedAt = integer(f.get('at'));
    const keyIndex = integer(f.get('key'));
    if (!isOneOf(DELIVERY_OUTCOMES, outcome) || receivedAt === undefined) {
      return bad('bad delivery');
    }
    const record: DeliveryRecord = {
      kind,
      eventId,
      type,
      created: f.get('created') ?? '',
      receivedAt,
      keyIndex: keyIndex ?? 0,
      outcome,
    };
    const payload = f.get('payload');
    if (payload !== undefined) record.payload = payload;
    return record;
  }
  if (kind === 'attempt') {
    const outcome = f.get('outcome');
    const attempt = integer(f.get('n'));
    const startedAt = integer(f.get('started'));
    const endedAt = integer(f.get('ended'));
    if (
      !isOneOf(ATTEMPT_OUTCOMES, outcome) ||
      attempt === undefined ||
      startedAt === undefined ||
      endedAt === undefined
    ) {
      return bad('bad attempt');
    }
    const record: AttemptRecord = {
      kind,
      eventId,
      type,
      attempt,
      startedAt,
      endedAt,
      worker: f.get('worker') ?? '',
      outcome,
    };
    const error = f.get('error');
    const errorType = f.get('errorType');
    const replayId = f.get('replay');
    if (error !== undefined) record.error = error;
    if (errorType !== undefined) record.errorType = errorType;
    if (replayId !== undefined) record.replayId = replayId;
    return record;
  }
  return bad(`unknown kind ${kind}`);
}

/** The shard whose stream holds a record: the event's shard; replays go to shard 0. */
export function historyShardOf(record: HistoryRecord, shardCount: number): number {
  return record.kind === 'replay' ? 0 : shardOf(record.eventId, shardCount);
}

/** A record as XADD takes it: its stream, and its fields and values. */
export interface EncodedHistoryRecord {
  stream: string;
  fields: string[];
}

/**
 * Appends records to one stream in one call: ARGV holds each record as its field count, then
 * its fields and values. (A pipeline of XADDs costs the worker several times more per record.)
 */
const APPEND = `
local i = 1
local added = 0
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  redis.call('XADD', KEYS[1], '*', unpack(ARGV, i + 1, i + n))
  i = i + n + 1
  added = added + 1
end
return added`;

type AppendClient = RedisClient & {
  groqAppendHistory(key: string, ...args: string[]): Promise<number>;
};

/**
 * Appends history records from JavaScript: the worker's attempts, the stock (non-script) paths,
 * the replay command and tests. One script call per shard (a Cluster call must stay within one
 * slot; a shard's stream has the shard's hash tag).
 */
export class HistoryWriter {
  readonly #client: AppendClient;
  readonly #shards: QueueShard[];

  constructor(deps: { client: RedisClient; settings: QueueSettings }) {
    deps.client.defineCommand('groqAppendHistory', { numberOfKeys: 1, lua: APPEND });
    this.#client = deps.client as AppendClient;
    this.#shards = queueShards(deps.settings);
  }

  /** A record encoded for its shard's stream. */
  encode(record: HistoryRecord): EncodedHistoryRecord {
    const shard = this.#shards[historyShardOf(record, this.#shards.length)] as QueueShard;
    return { stream: historyStreamKey(shard), fields: encodeHistoryRecord(record) };
  }

  /** Appends records already encoded (one call per stream). */
  async appendEncoded(records: readonly EncodedHistoryRecord[]): Promise<void> {
    const byStream = new Map<string, string[]>();
    for (const { stream, fields } of records) {
      let args = byStream.get(stream);
      if (args === undefined) {
        args = [];
        byStream.set(stream, args);
      }
      args.push(String(fields.length), ...fields);
    }
    await Promise.all(
      [...byStream].map(([stream, args]) =>
        this.#client.groqAppendHistory(stream, ...args).catch((error: unknown) => {
          throw new Error('could not append history records', { cause: error });
        }),
      ),
    );
  }

  /** Appends the records, each to its shard's stream; resolves once Redis holds them all. */
  append(records: readonly HistoryRecord[]): Promise<void> {
    return this.appendEncoded(records.map((record) => this.encode(record)));
  }
}

function ms(value: number): string {
  return String(Math.round(value));
}

function integer(value: string | undefined): number | undefined {
  if (value === undefined || !/^-?[0-9]{1,16}$/.test(value)) return undefined;
  return Number(value);
}

function isOneOf<T extends string>(values: readonly T[], value: string | undefined): value is T {
  return value !== undefined && (values as readonly string[]).includes(value);
}
