import { type BackendFactory, createRedisBackend, type RedisQueueBackend } from 'bullmq';
import type { RedisClient } from './connection.js';
import {
  CLAIM,
  DEFAULT_MARKER_SETTINGS,
  FORGET,
  LOOKUP,
  type MarkerSettings,
  markDoneScript,
} from './done-markers.js';
import type { EncodedHistoryRecord } from './history.js';
import { doneGroupKey, idempotencyKey } from './naming.js';
import { noteTurnWait, type ResourceTurn, ResourceTurns, type TurnResult } from './ordering.js';

/**
 * Value of the previous layout's done-marker (`groq:event:<id>` = `done`): still honoured
 * until such markers expire, and written during a rolling upgrade (`done-markers.ts`).
 */
export const DONE = 'done';
/** Value prefix of a claim: `processing:<owner>`. */
export const PROCESSING = 'processing:';

/** Outcome of a claim: ours now, handled already, or held by another live attempt. */
export type ClaimResult = 'claimed' | 'done' | 'busy';

const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`;

/** Tries at writing a done-marker (about 3 s in all): giving up means the handler runs again. */
const DONE_MARK_TRIES = 5;

/**
 * Runs `write` (a write that carries a done-marker) until it succeeds, through a short Redis
 * hiccup (a failover, a restart, writes refused at maxmemory): up to {@link DONE_MARK_TRIES}
 * tries, 200 ms, 400 ms, … apart, while `retryable` says the error is worth another try.
 */
export function retryDoneMark<T>(
  write: () => Promise<T>,
  retryable: (error: unknown) => boolean = () => true,
): Promise<T> {
  // Promise chains rather than an async loop: the first try, which nearly always succeeds, then
  // costs the caller no extra turns (this runs once per job on the worker's hot path).
  const attempt = (tries: number): Promise<T> => {
    let written: Promise<T>;
    try {
      written = write();
    } catch (error) {
      written = Promise.reject(error);
    }
    return written.catch((error: unknown) => {
      if (tries >= DONE_MARK_TRIES || !retryable(error)) throw error;
      return new Promise<void>((resolve) => setTimeout(resolve, 100 * 2 ** tries).unref()).then(
        () => attempt(tries + 1),
      );
    });
  };
  return attempt(1);
}

type ScriptClient = RedisClient & {
  groqClaim(group: string, key: string, owner: string, ttlMs: number): Promise<string>;
  groqRenew(key: string, owner: string, ttlMs: number): Promise<number>;
  groqRelease(key: string, owner: string): Promise<number>;
  groqLookup(count: number, ...keys: string[]): Promise<number[]>;
  groqForget(group: string, key: string): Promise<number>;
  groqMarkDone(group: string, key: string, ttl: number, shadowUntil: number): Promise<number>;
  groqMarkDoneOneKey(group: string, key: string, ttl: number, shadowUntil: number): Promise<number>;
};

/**
 * The two-phase idempotency record of SPEC §6, one command per call: the claim
 * `groq:event:<id>` (absent → `processing:<owner>`, TTL = the job lock, renewed with it), then
 * the done-marker, in the compact layout of `done-markers.ts` (or, with the `one-key` layout,
 * `groq:event:<id>` = `done`). Every call touches one event's claim key and its marker group,
 * which share a slot on a Cluster, so it works on a single Redis and on a Cluster alike.
 */
export class IdempotencyStore {
  readonly #client: ScriptClient;
  readonly #cluster: boolean;
  readonly #settings: MarkerSettings;

  /** `settings`: how this process writes markers (`openMarkerSettings`); readers need none. */
  constructor(client: RedisClient, settings: MarkerSettings = DEFAULT_MARKER_SETTINGS) {
    // defineCommand only registers the script locally; it is sent with EVALSHA on first use.
    client.defineCommand('groqClaim', { numberOfKeys: 2, lua: CLAIM });
    client.defineCommand('groqRenew', { numberOfKeys: 1, lua: RENEW });
    client.defineCommand('groqRelease', { numberOfKeys: 1, lua: RELEASE });
    client.defineCommand('groqLookup', { lua: LOOKUP });
    client.defineCommand('groqForget', { numberOfKeys: 2, lua: FORGET });
    // One name per layout: two stores of one client may write different layouts (tests).
    client.defineCommand('groqMarkDone', { numberOfKeys: 2, lua: markDoneScript('buckets') });
    client.defineCommand('groqMarkDoneOneKey', { numberOfKeys: 2, lua: markDoneScript('one-key') });
    this.#client = client as ScriptClient;
    this.#cluster = client.isCluster;
    this.#settings = settings;
  }

  /** Claims the event for `owner` (e.g. the job's lock token) for `ttlMs`. */
  async claim(eventId: string, owner: string, ttlMs: number): Promise<ClaimResult> {
    const result = await this.#client.groqClaim(
      this.#group(eventId),
      idempotencyKey(eventId),
      PROCESSING + owner,
      ttlMs,
    );
    if (result === 'claimed' || result === 'done' || result === 'busy') return result;
    throw new Error(`unexpected claim reply ${JSON.stringify(result)}`);
  }

  /** Extends the claim; false when it is no longer `owner`'s. */
  async renew(eventId: string, owner: string, ttlMs: number): Promise<boolean> {
    return (await this.#client.groqRenew(idempotencyKey(eventId), PROCESSING + owner, ttlMs)) === 1;
  }

  /** Marks the event done for `ttlSeconds`: it will never be handled again meanwhile. */
  async markDone(eventId: string, ttlSeconds: number): Promise<void> {
    const { layout, shadowUntil } = this.#settings;
    const group = this.#group(eventId);
    const key = idempotencyKey(eventId);
    if (layout === 'one-key') {
      await this.#client.groqMarkDoneOneKey(group, key, ttlSeconds, shadowUntil);
    } else {
      await this.#client.groqMarkDone(group, key, ttlSeconds, shadowUntil);
    }
  }

  /** Releases `owner`'s claim after a failed attempt, so a retry can claim it. */
  async release(eventId: string, owner: string): Promise<void> {
    await this.#client.groqRelease(idempotencyKey(eventId), PROCESSING + owner);
  }

  /** True when the event's handler has finished (a marker of either layout that has not expired). */
  async isDone(eventId: string): Promise<boolean> {
    return (await this.lookup([eventId]))[0] === true;
  }

  /**
   * Whether each event is done, with one call per marker group (a single Redis: one call for
   * all; a Cluster: about one per event). An error is that group's events' answer.
   */
  async lookup(eventIds: readonly string[]): Promise<(boolean | Error)[]> {
    const replies = await this.#lookup(eventIds);
    return replies.map((reply) => (reply instanceof Error ? reply : reply !== 0));
  }

  /**
   * When the event's marker expires (Unix seconds, Redis's clock), or undefined when it has none
   * in the compact layout (not done, or marked in the previous layout).
   */
  async doneUntil(eventId: string): Promise<number | undefined> {
    const [reply] = await this.#lookup([eventId]);
    if (reply instanceof Error) throw reply;
    return reply !== undefined && reply > 1 ? reply : undefined;
  }

  /** Forgets that the event was handled, in either layout. True when it had a marker. */
  async forget(eventId: string): Promise<boolean> {
    return (await this.#client.groqForget(this.#group(eventId), idempotencyKey(eventId))) === 1;
  }

  /** Milliseconds left on the event's claim (negative when there is none). */
  claimTtlMs(eventId: string): Promise<number> {
    return this.#client.pttl(idempotencyKey(eventId));
  }

  #group(eventId: string): string {
    return doneGroupKey(eventId, this.#cluster);
  }

  /** The LOOKUP replies per event: expiry, 1 (previous layout) or 0; or the group's error. */
  async #lookup(eventIds: readonly string[]): Promise<(number | Error)[]> {
    const groups = new Map<string, number[]>();
    eventIds.forEach((eventId, index) => {
      const group = this.#group(eventId);
      const members = groups.get(group);
      if (members === undefined) groups.set(group, [index]);
      else members.push(index);
    });
    const replies: (number | Error)[] = new Array(eventIds.length);
    await Promise.all(
      [...groups].map(async ([group, indexes]) => {
        const keys = indexes.map((index) => idempotencyKey(eventIds[index] as string));
        try {
          const found = await this.#client.groqLookup(keys.length + 1, group, ...keys);
          indexes.forEach((index, i) => {
            replies[index] = Number(found[i] ?? 0);
          });
        } catch (error) {
          const failure = error instanceof Error ? error : new Error(String(error));
          for (const index of indexes) replies[index] = failure;
        }
      }),
    );
    return replies;
  }
}

/** A handled event's turn at its resource, to end as the event is marked done. */
export interface EndedTurn {
  readonly turn: ResourceTurn;
  /** The lock token the turn was taken for. */
  readonly owner: string;
}

/**
 * The worker's side of SPEC §6's idempotency and per-resource ordering, as the processor uses
 * it: a stock implementation (one command per step) and a fast one (claim, done-mark and the
 * end of a turn riding on BullMQ's own calls).
 */
export interface EventLedger {
  /**
   * Claims the job's event for this attempt (owner: the job's lock token, TTL: the lock's).
   * On the fast path the job's fetch may have claimed it already: then no command is sent.
   */
  claim(eventId: string, jobId: string, token: string, ttlMs: number): Promise<ClaimResult>;
  /**
   * The attempt ends before its handler (invalid, unhandled, the same job still unwinding):
   * gives back a claim the job's fetch took for `token`, so the event is not held for a lock
   * period. Nothing to do when the fetch took none.
   */
  giveBack(eventId: string, jobId: string, token: string): Promise<void>;
  /** Extends the claim with the job's lock; false when it is no longer `token`'s. */
  renew(eventId: string, token: string, ttlMs: number): Promise<boolean>;
  /** Releases `token`'s claim after a failed attempt, so a retry can claim it. */
  release(eventId: string, token: string): Promise<void>;
  /**
   * Takes the event's turn at its resource for `token`, locked for `ttlMs` (the job lock's). On
   * the fast path the fetch of job `jobId` may have taken it already: then no command is sent.
   */
  takeTurn(turn: ResourceTurn, token: string, ttlMs: number, jobId?: string): Promise<TurnResult>;
  /** Ends `token`'s turn without moving the resource on (the handler failed or never ran). */
  endTurn(turn: ResourceTurn, token: string): Promise<void>;
  /** Extends `token`'s turn with the job's lock; false when it is no longer `token`'s. */
  renewTurn(resourceKey: string, token: string, ttlMs: number): Promise<boolean>;
  /** Notes that a job of the queue waits for its resource until `dueMs` (for `stats`). */
  noteTurnWait(queueQualifiedName: string, jobId: string, dueMs: number): Promise<void>;
  /**
   * The handler succeeded, or the event completes as stale: the event is marked done, and a
   * turn the attempt held ends, moving its resource on. On the fast path both are written by the
   * job's completion, which BullMQ sends once the processor returns, so this returns at once; a
   * refused write fails that completion, and the job is never completed unmarked.
   */
  markHandled(eventId: string, jobId: string, ended?: EndedTurn): Promise<void>;
  /** Marks the event done now (a late mark), and ends its turn, through a short Redis hiccup. */
  markDone(eventId: string, ended?: EndedTurn): Promise<void>;
  /** Milliseconds left on the event's record (negative when there is none). */
  claimTtlMs(eventId: string): Promise<number>;
  /**
   * Closing: events marked handled whose job completion never came (the worker closed first)
   * are marked done now. Resolves with how many could not be marked.
   */
  markUnfinishedDone(): Promise<number>;
  /**
   * The event history's record of the attempt at `jobId`, whose job is about to complete:
   * written by the job's completion itself where the ledger can (true; the fast path's finish),
   * else false and the caller appends it.
   */
  recordAtFinish(
    jobId: string,
    record: EncodedHistoryRecord,
    unwritten: (record: EncodedHistoryRecord) => void,
  ): boolean;
  /** Closing: the records {@link recordAtFinish} took whose job completion never came. */
  takeUnfinishedRecords(): EncodedHistoryRecord[];
  /** The `backendFactory` the worker's BullMQ `Worker`s use. */
  readonly backendFactory: BackendFactory<RedisQueueBackend>;
}

/** What a worker's ledger is built with. */
export interface LedgerOptions {
  /** Seconds a done-marker (and a resource's state) lives: `IDEMPOTENCY_TTL_SECONDS`. */
  readonly doneTtlSeconds: number;
  /** How done-markers are written (`openMarkerSettings`); default the compact layout. */
  readonly markers?: MarkerSettings | undefined;
  /**
   * The handlers order events per resource: on the fast path, a job's fetch takes its turn as
   * it takes its claim. Default false (the worker takes every turn itself).
   */
  readonly turnsAtFetch?: boolean | undefined;
}

/**
 * What both paths' ledgers do the same way: renewing and releasing a claim, ending and renewing
 * a resource's turn, and marking an event done outside a job's completion (retried).
 */
export abstract class RedisLedger {
  readonly doneTtlSeconds: number;
  protected readonly client: RedisClient;
  protected readonly store: IdempotencyStore;
  protected readonly turns: ResourceTurns;

  constructor(client: RedisClient, options: LedgerOptions) {
    this.doneTtlSeconds = options.doneTtlSeconds;
    this.client = client;
    this.store = new IdempotencyStore(client, options.markers);
    this.turns = new ResourceTurns(client, options.doneTtlSeconds);
  }

  renew(eventId: string, token: string, ttlMs: number): Promise<boolean> {
    return this.store.renew(eventId, token, ttlMs);
  }

  release(eventId: string, token: string): Promise<void> {
    return this.store.release(eventId, token);
  }

  endTurn(turn: ResourceTurn, token: string): Promise<void> {
    return this.turns.end(turn, token, false);
  }

  renewTurn(resourceKey: string, token: string, ttlMs: number): Promise<boolean> {
    return this.turns.renew(resourceKey, token, ttlMs);
  }

  noteTurnWait(queueQualifiedName: string, jobId: string, dueMs: number): Promise<void> {
    return noteTurnWait(this.client, queueQualifiedName, jobId, dueMs);
  }

  markDone(eventId: string, ended?: EndedTurn): Promise<void> {
    return retryDoneMark(() => this.markDoneOnce(eventId, ended));
  }

  claimTtlMs(eventId: string): Promise<number> {
    return this.store.claimTtlMs(eventId);
  }

  /** Writes the event's done-marker, then ends its resource's turn: one try. */
  protected async markDoneOnce(eventId: string, ended: EndedTurn | undefined): Promise<void> {
    await this.store.markDone(eventId, this.doneTtlSeconds);
    if (ended !== undefined) await this.turns.end(ended.turn, ended.owner, true);
  }
}

/** The stock path's ledger: each step one command on one event's keys. */
export class StockLedger extends RedisLedger implements EventLedger {
  /** BullMQ's own Redis backend. */
  readonly backendFactory = createRedisBackend;

  claim(eventId: string, _jobId: string, token: string, ttlMs: number): Promise<ClaimResult> {
    return this.store.claim(eventId, token, ttlMs);
  }

  async giveBack(): Promise<void> {
    // The stock path's fetch claims nothing.
  }

  takeTurn(turn: ResourceTurn, token: string, ttlMs: number): Promise<TurnResult> {
    return this.turns.take(turn, token, ttlMs);
  }

  markHandled(eventId: string, _jobId: string, ended?: EndedTurn): Promise<void> {
    return this.markDoneOnce(eventId, ended);
  }

  async markUnfinishedDone(): Promise<number> {
    // Every handled event was marked before its job was completed.
    return 0;
  }

  recordAtFinish(): boolean {
    // BullMQ's own finish writes nothing of ours.
    return false;
  }

  takeUnfinishedRecords(): EncodedHistoryRecord[] {
    return [];
  }
}
