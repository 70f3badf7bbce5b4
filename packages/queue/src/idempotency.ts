import { type BackendFactory, createRedisBackend, type RedisQueueBackend } from 'bullmq';
import type { RedisClient } from './connection.js';
import { idempotencyKey } from './naming.js';
import { noteTurnWait, type ResourceTurn, ResourceTurns, type TurnResult } from './ordering.js';

/** Value of an idempotency record once the event's handler has finished. */
export const DONE = 'done';
/** Value prefix of a claim: `processing:<owner>`. */
export const PROCESSING = 'processing:';

/** Outcome of a claim: ours now, handled already, or held by another live attempt. */
export type ClaimResult = 'claimed' | 'done' | 'busy';

// One round trip each. Keys are single, so the scripts run on a Redis Cluster as well.
const CLAIM = `
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 'claimed'
end
if v == '${DONE}' then return 'done' end
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 'claimed'
end
return 'busy'`;

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
  groqClaim(key: string, owner: string, ttlMs: number): Promise<string>;
  groqRenew(key: string, owner: string, ttlMs: number): Promise<number>;
  groqRelease(key: string, owner: string): Promise<number>;
};

/**
 * The two-phase idempotency record of SPEC §6, `groq:event:<id>`, one command per call:
 * absent → `processing:<owner>` (TTL = the job lock, renewed with it) → `done` (long TTL).
 * Every command touches one key, so it works on a single Redis and on a Cluster alike.
 */
export class IdempotencyStore {
  readonly #client: ScriptClient;

  constructor(client: RedisClient) {
    // defineCommand only registers the script locally; it is sent with EVALSHA on first use.
    client.defineCommand('groqClaim', { numberOfKeys: 1, lua: CLAIM });
    client.defineCommand('groqRenew', { numberOfKeys: 1, lua: RENEW });
    client.defineCommand('groqRelease', { numberOfKeys: 1, lua: RELEASE });
    this.#client = client as ScriptClient;
  }

  /** Claims the event for `owner` (e.g. the job's lock token) for `ttlMs`. */
  async claim(eventId: string, owner: string, ttlMs: number): Promise<ClaimResult> {
    const result = await this.#client.groqClaim(idempotencyKey(eventId), PROCESSING + owner, ttlMs);
    if (result === 'claimed' || result === 'done' || result === 'busy') return result;
    throw new Error(`unexpected claim reply ${JSON.stringify(result)}`);
  }

  /** Extends the claim; false when it is no longer `owner`'s. */
  async renew(eventId: string, owner: string, ttlMs: number): Promise<boolean> {
    return (await this.#client.groqRenew(idempotencyKey(eventId), PROCESSING + owner, ttlMs)) === 1;
  }

  /** Marks the event done for `ttlSeconds`: it will never be handled again meanwhile. */
  async markDone(eventId: string, ttlSeconds: number): Promise<void> {
    await this.#client.set(idempotencyKey(eventId), DONE, 'EX', ttlSeconds);
  }

  /** Releases `owner`'s claim after a failed attempt, so a retry can claim it. */
  async release(eventId: string, owner: string): Promise<void> {
    await this.#client.groqRelease(idempotencyKey(eventId), PROCESSING + owner);
  }

  /** True when the event's handler has finished. */
  async isDone(eventId: string): Promise<boolean> {
    return (await this.#client.get(idempotencyKey(eventId))) === DONE;
  }

  /** Milliseconds left on the event's record (negative when there is none). */
  claimTtlMs(eventId: string): Promise<number> {
    return this.#client.pttl(idempotencyKey(eventId));
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
  /** Takes the event's turn at its resource for `token`, locked for `ttlMs` (the job lock's). */
  takeTurn(turn: ResourceTurn, token: string, ttlMs: number): Promise<TurnResult>;
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
  /** The `backendFactory` the worker's BullMQ `Worker`s use. */
  readonly backendFactory: BackendFactory<RedisQueueBackend>;
}

/** The stock path's ledger: each step one command on one key. */
export class StockLedger implements EventLedger {
  /** BullMQ's own Redis backend. */
  readonly backendFactory = createRedisBackend;
  readonly #client: RedisClient;
  readonly #store: IdempotencyStore;
  readonly #turns: ResourceTurns;
  readonly #doneTtlSeconds: number;

  constructor(client: RedisClient, options: { doneTtlSeconds: number }) {
    this.#client = client;
    this.#store = new IdempotencyStore(client);
    this.#turns = new ResourceTurns(client, options.doneTtlSeconds);
    this.#doneTtlSeconds = options.doneTtlSeconds;
  }

  claim(eventId: string, _jobId: string, token: string, ttlMs: number): Promise<ClaimResult> {
    return this.#store.claim(eventId, token, ttlMs);
  }

  async giveBack(): Promise<void> {
    // The stock path's fetch claims nothing.
  }

  renew(eventId: string, token: string, ttlMs: number): Promise<boolean> {
    return this.#store.renew(eventId, token, ttlMs);
  }

  release(eventId: string, token: string): Promise<void> {
    return this.#store.release(eventId, token);
  }

  takeTurn(turn: ResourceTurn, token: string, ttlMs: number): Promise<TurnResult> {
    return this.#turns.take(turn, token, ttlMs);
  }

  endTurn(turn: ResourceTurn, token: string): Promise<void> {
    return this.#turns.end(turn, token, false);
  }

  renewTurn(resourceKey: string, token: string, ttlMs: number): Promise<boolean> {
    return this.#turns.renew(resourceKey, token, ttlMs);
  }

  noteTurnWait(queueQualifiedName: string, jobId: string, dueMs: number): Promise<void> {
    return noteTurnWait(this.#client, queueQualifiedName, jobId, dueMs);
  }

  async markHandled(eventId: string, _jobId: string, ended?: EndedTurn): Promise<void> {
    await this.#store.markDone(eventId, this.#doneTtlSeconds);
    if (ended !== undefined) await this.#turns.end(ended.turn, ended.owner, true);
  }

  markDone(eventId: string, ended?: EndedTurn): Promise<void> {
    return retryDoneMark(() => this.markHandled(eventId, '', ended));
  }

  claimTtlMs(eventId: string): Promise<number> {
    return this.#store.claimTtlMs(eventId);
  }

  async markUnfinishedDone(): Promise<number> {
    // Every handled event was marked before its job was completed.
    return 0;
  }
}
