import {
  type BackendFactory,
  type RedisClient as BullmqClient,
  createIORedisClient,
  type IRedisTransaction,
  isIRedisClient,
  isRedisInstance,
  type KeyPrefixOptions,
  QueueKeys,
  RedisConnection,
  RedisQueueBackend,
} from 'bullmq';
import type { EncodedHistoryRecord } from '../history.js';
import { type EndedTurn, retryDoneMark } from '../idempotency.js';
import { idempotencyKey, resourceStateKey } from '../naming.js';
import { createdArg, type TurnResult, turnResult } from '../ordering.js';
import { optionsAsJson } from './finish-script.js';

/** What a job's completion writes first: its event's done-marker, and the end of its turn. */
export interface DoneMark {
  readonly eventId: string;
  readonly ended: EndedTurn | undefined;
}

/**
 * What the fused finish asks of the worker, and tells it: which finishing job's event to mark
 * done, and which fetched job's event it claimed. Kept by the fast path's ledger.
 */
export interface FinishBook {
  /** Seconds a done-marker (and a resource's state) lives (`IDEMPOTENCY_TTL_SECONDS`). */
  readonly doneTtlSeconds: number;
  /** Until when (Unix s) a marker also leaves the previous layout's (`MarkerSettings`); 0: never. */
  readonly shadowUntil: number;
  /** What this job's completion writes first, if anything (forgotten then). */
  takeDoneMark(jobId: string): DoneMark | undefined;
  /** Fetching `jobId` (as the slot's next job) claimed its event for `token`. */
  claimedAtFetch(jobId: string, token: string): void;
  /** The fetch also takes the fetched job's turn at its resource (per-resource ordering). */
  readonly turnsAtFetch: boolean;
  /** Fetching `jobId` took its turn for `token`: at resource `key`, for `created` (as sent). */
  turnAtFetch(jobId: string, token: string, turn: FetchedTurn): void;
  /** `jobId`'s attempt is over (its job completes or fails): a fetch turn it never used goes. */
  attemptOver(jobId: string): void;
  /**
   * The event history's record of this job's attempt, for its finish to append (taken once),
   * and what to do with it when the finish fails (append it by other means: not lose it).
   */
  takeRecord(jobId: string): FinishRecord | undefined;
}

/** A history record the job's finish appends. */
export interface FinishRecord {
  readonly record: EncodedHistoryRecord;
  readonly unwritten: (record: EncodedHistoryRecord) => void;
}

/** A turn the fused finish took for the job it fetched. */
export interface FetchedTurn {
  readonly key: string;
  /** `createdArg` of the turn the fetch took ('' when the event's `created` is not a time). */
  readonly created: string;
  readonly result: TurnResult;
}

/** How BullMQ's packed finishing options are sent to the script. */
type OptionsEncoder = (packed: string | number | Buffer) => string | number | Buffer;

/** What the fused finish backend is made of. */
export interface FusedFinish {
  readonly book: FinishBook;
  /** The fused finish Lua (`fusedFinishScript`). */
  readonly script: string;
  /** Default {@link optionsAsJson}; the script decodes BullMQ's MessagePack as well. */
  readonly encodeOptions?: OptionsEncoder;
}

/** The name the fused finish is defined under on BullMQ's connection (public `defineCommand`). */
const FUSED_FINISH = 'groqFusedFinish';
/**
 * BullMQ's `moveToFinished` arguments (the reviewed script's): 14 keys, then 9 ARGV — the job id
 * 1st, the target (`completed`/`failed`) 5th, the options 8th, the fields to update 9th.
 */
const KEY_COUNT = 14;
const JOB_ID_ARG = KEY_COUNT;
const TARGET_ARG = KEY_COUNT + 4;
const OPTIONS_ARG = KEY_COUNT + 7;
const FIELDS_ARG = KEY_COUNT + 8;
/** Replies that mean Redis ran nothing and may take the same call a moment later. */
const REFUSAL = /^(OOM|READONLY|LOADING|MASTERDOWN|TRYAGAIN)\b/;

/**
 * BullMQ's Redis backend with its job finish replaced by the fused finish script, through the
 * `execCommand` hook BullMQ's backend offers its subclasses. Everything else is BullMQ's own.
 */
class FusedFinishBackend extends RedisQueueBackend {
  readonly #book: FinishBook;
  readonly #script: string;
  readonly #encodeOptions: OptionsEncoder;
  readonly #claimPrefix = idempotencyKey('');
  readonly #turnPrefix = resourceStateKey('');
  readonly #defined = new WeakSet<object>();

  constructor(fused: FusedFinish, ...stock: ConstructorParameters<typeof RedisQueueBackend>) {
    super(...stock);
    this.#book = fused.book;
    this.#script = fused.script;
    this.#encodeOptions = fused.encodeOptions ?? optionsAsJson;
  }

  // biome-ignore lint/suspicious/noExplicitAny: BullMQ's own signature.
  override execCommand(client: BullmqClient | IRedisTransaction, name: string, args: any[]): any {
    if (name !== 'moveToFinished' || !isIRedisClient(client)) {
      return super.execCommand(client, name, args);
    }
    return this.#finish(client, args);
  }

  /** BullMQ's finish, with the done-marker this job's handler earned and the next job's claim. */
  #finish(client: BullmqClient, args: unknown[]): Promise<unknown> {
    if (!this.#defined.has(client)) {
      client.defineCommand(FUSED_FINISH, { numberOfKeys: KEY_COUNT, lua: this.#script });
      this.#defined.add(client);
    }
    const jobId = String(args[JOB_ID_ARG]);
    this.#book.attemptOver(jobId);
    const mark = args[TARGET_ARG] === 'completed' ? this.#book.takeDoneMark(jobId) : undefined;
    const full = args.slice(0, FIELDS_ARG);
    const options = full[OPTIONS_ARG];
    if (options !== undefined) full[OPTIONS_ARG] = this.#encodeOptions(options as Buffer);
    const ended = mark?.ended;
    const taken = this.#book.takeRecord(jobId);
    const record = taken?.record;
    full.push(
      args[FIELDS_ARG] ?? '',
      mark === undefined ? '' : idempotencyKey(mark.eventId),
      this.#book.doneTtlSeconds,
      this.#claimPrefix,
      ended === undefined ? '' : resourceStateKey(ended.turn.key),
      ended === undefined ? '' : createdArg(ended.turn),
      ended === undefined ? '' : ended.turn.type,
      ended === undefined ? '' : ended.owner,
      this.#book.shadowUntil,
      this.#book.turnsAtFetch ? '1' : '',
      this.#turnPrefix,
      record === undefined ? '' : record.stream,
    );
    if (record !== undefined) full.push(...record.fields);
    const run = (): Promise<unknown> =>
      client.runCommand(FUSED_FINISH, full).then((result: unknown) => this.#noteClaim(result));
    // Without a marker to write, BullMQ handles its own errors as it always does; with one, a
    // refusal (maxmemory, failover) is tried again, since giving up runs the handler twice.
    const finished = mark === undefined ? run() : retryDoneMark(run, isRefusal);
    if (taken === undefined) return finished;
    // A finish that failed may not have appended the record: it goes by the other way (a
    // record twice in the history rather than none).
    return finished.catch((error: unknown) => {
      taken.unwritten(taken.record);
      throw error;
    });
  }

  /**
   * The script appends the lock token when it claimed the fetched job's event, then the turn it
   * took for it, if any: key, created, and the turn's reply.
   */
  #noteClaim(result: unknown): unknown {
    if (Array.isArray(result) && result.length > 4) {
      const [, jobId, , , token, key, created, code, value] = result as unknown[];
      if (typeof jobId === 'string' && typeof token === 'string') {
        this.#book.claimedAtFetch(jobId, token);
        const turn = typeof key === 'string' ? fetchedTurn(key, created, code, value) : undefined;
        if (turn !== undefined) this.#book.turnAtFetch(jobId, token, turn);
      }
      return result.slice(0, 4);
    }
    return result;
  }
}

/**
 * The turn the finish took, from its reply; undefined for a reply it cannot read (never thrown:
 * the job is finished by then, and the worker takes the turn itself for the same token, which
 * its owner may take again).
 */
function fetchedTurn(
  key: string,
  created: unknown,
  code: unknown,
  value: unknown,
): FetchedTurn | undefined {
  try {
    return { key, created: String(created ?? ''), result: turnResult([code, value]) };
  } catch {
    return undefined;
  }
}

function isRefusal(error: unknown): boolean {
  return error instanceof Error && REFUSAL.test(error.message);
}

/**
 * A BullMQ `backendFactory` for the worker's `Worker`s: BullMQ's Redis backend with the fused
 * finish. Built as BullMQ's own `createRedisBackend` builds a worker's backend from a client
 * instance (the shared main connection, a dedicated blocking duplicate).
 */
export function fusedFinishBackend(fused: FusedFinish): BackendFactory<RedisQueueBackend> {
  return (name, opts, options = {}) => {
    const client = opts.connection;
    // A worker's options carry its key prefix and its name, as BullMQ's own factory reads them.
    const { prefix = 'bull', name: workerName } = opts as KeyPrefixOptions & { name?: string };
    if (options.blocking === true || !isRedisInstance(client)) {
      throw new Error('the fused finish backend takes a worker over an ioredis client');
    }
    const connection = new RedisConnection(client, {
      shared: true,
      blocking: false,
      ...(opts.skipVersionCheck === undefined ? {} : { skipVersionCheck: opts.skipVersionCheck }),
      ...(opts.skipWaitingForReady === undefined
        ? {}
        : { skipWaitingForReady: opts.skipWaitingForReady }),
    });
    let blockingConnection: RedisConnection | undefined;
    if (options.withBlockingConnection === true) {
      const base64Name = Buffer.from(name).toString('base64');
      const connectionName = `${prefix}:${base64Name}${workerName ? `:w:${workerName}` : ''}`;
      const adapter = isIRedisClient(client) ? client : createIORedisClient(client);
      blockingConnection = new RedisConnection(adapter.duplicate({ connectionName }), {
        shared: false,
        blocking: true,
        ...(opts.skipVersionCheck === undefined ? {} : { skipVersionCheck: opts.skipVersionCheck }),
      });
    }
    const queueKeys = new QueueKeys(prefix);
    return new FusedFinishBackend(
      fused,
      connection,
      name,
      queueKeys.getKeys(name),
      (type: string) => queueKeys.toKey(name, type),
      opts,
      blockingConnection,
    );
  };
}
