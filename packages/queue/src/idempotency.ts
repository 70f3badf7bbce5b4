import type { RedisClient } from './connection.js';
import { idempotencyKey } from './naming.js';

/** Value of an idempotency record once the event's handler has finished. */
export const DONE = 'done';
/** Value prefix of a claim: `processing:<owner>`. */
export const PROCESSING = 'processing:';

/** Outcome of {@link IdempotencyStore.claim}. */
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

// The fresh-claim and done-mark of many events at once: one command for all the jobs of a
// worker that reach that step in the same turn of the event loop (single Redis only: on a
// Cluster the keys live in different slots).
const CLAIM_FRESH = `
local claimed = {}
for i, key in ipairs(KEYS) do
  claimed[i] = redis.call('SET', key, ARGV[i + 1], 'PX', ARGV[1], 'NX') and 1 or 0
end
return claimed`;

const MARK_DONE = `
for _, key in ipairs(KEYS) do
  redis.call('SET', key, '${DONE}', 'EX', ARGV[1])
end
return #KEYS`;

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

/** Most keys one coalesced command carries. */
const MAX_KEYS = 500;

type ScriptClient = RedisClient & {
  groqClaimFresh(count: number, ...keysThenArgs: (string | number)[]): Promise<number[]>;
  groqMarkDone(count: number, ...keysThenArgs: (string | number)[]): Promise<number>;
  groqClaim(key: string, owner: string, ttlMs: number): Promise<string>;
  groqRenew(key: string, owner: string, ttlMs: number): Promise<number>;
  groqRelease(key: string, owner: string): Promise<number>;
};

/**
 * The two-phase idempotency record of SPEC §6, `groq:event:<id>`:
 * absent → `processing:<owner>` (TTL = the job lock, renewed with it) → `done` (long TTL).
 */
export class IdempotencyStore {
  readonly #client: ScriptClient;
  readonly #freshClaims: Coalescer<{ key: string; value: string }, boolean>;
  readonly #doneMarks: Coalescer<string, void>;

  constructor(client: RedisClient) {
    // Numbers of keys vary per call: ioredis then takes the key count as first argument.
    client.defineCommand('groqClaimFresh', { lua: CLAIM_FRESH });
    client.defineCommand('groqMarkDone', { lua: MARK_DONE });
    // defineCommand only registers the script locally; it is sent with EVALSHA on first use.
    client.defineCommand('groqClaim', { numberOfKeys: 1, lua: CLAIM });
    client.defineCommand('groqRenew', { numberOfKeys: 1, lua: RENEW });
    client.defineCommand('groqRelease', { numberOfKeys: 1, lua: RELEASE });
    this.#client = client as ScriptClient;
    const scripts = this.#client;
    this.#freshClaims = new Coalescer(async (ttlMs, claims) => {
      const keys = claims.map((claim) => claim.key);
      const values = claims.map((claim) => claim.value);
      const replies = await scripts.groqClaimFresh(keys.length, ...keys, ttlMs, ...values);
      return replies.map((reply) => reply === 1);
    });
    this.#doneMarks = new Coalescer(async (ttlSeconds, keys) => {
      await scripts.groqMarkDone(keys.length, ...keys, ttlSeconds);
      return keys.map(() => undefined);
    });
  }

  /** Claims the event for `owner` (e.g. the job's lock token) for `ttlMs`. */
  async claim(eventId: string, owner: string, ttlMs: number): Promise<ClaimResult> {
    const key = idempotencyKey(eventId);
    // Almost every claim finds no record: a SET NX (of many events at once) is much cheaper than
    // a script per event. Only when a record exists does the script sort out done, busy or ours.
    if (await this.#claimFresh(key, PROCESSING + owner, ttlMs)) return 'claimed';
    const result = await this.#client.groqClaim(key, PROCESSING + owner, ttlMs);
    if (result === 'claimed' || result === 'done' || result === 'busy') return result;
    throw new Error(`unexpected claim reply ${JSON.stringify(result)}`);
  }

  /** Extends the claim; false when it is no longer `owner`'s. */
  async renew(eventId: string, owner: string, ttlMs: number): Promise<boolean> {
    return (await this.#client.groqRenew(idempotencyKey(eventId), PROCESSING + owner, ttlMs)) === 1;
  }

  /** Marks the event done for `ttlSeconds`: it will never be handled again meanwhile. */
  async markDone(eventId: string, ttlSeconds: number): Promise<void> {
    const key = idempotencyKey(eventId);
    if (this.#client.isCluster) await this.#client.set(key, DONE, 'EX', ttlSeconds);
    else await this.#doneMarks.add(ttlSeconds, key);
  }

  /** Releases `owner`'s claim after a failed attempt, so a retry can claim it. */
  async release(eventId: string, owner: string): Promise<void> {
    await this.#client.groqRelease(idempotencyKey(eventId), PROCESSING + owner);
  }

  async #claimFresh(key: string, value: string, ttlMs: number): Promise<boolean> {
    if (this.#client.isCluster) {
      return (await this.#client.set(key, value, 'PX', ttlMs, 'NX')) === 'OK';
    }
    return this.#freshClaims.add(ttlMs, { key, value });
  }

  /** True when the event's handler has finished. */
  async isDone(eventId: string): Promise<boolean> {
    return (await this.#client.get(idempotencyKey(eventId))) === DONE;
  }
}

/**
 * Gathers the calls made in one turn of the event loop and runs them as one command per
 * `group` (e.g. per TTL) once the turn ends. Each call gets its own result or the batch's error.
 */
class Coalescer<Item, Result> {
  readonly #run: (group: number, items: Item[]) => Promise<Result[]>;
  #waiting = new Map<number, { item: Item; settle: Settle<Result> }[]>();

  constructor(run: (group: number, items: Item[]) => Promise<Result[]>) {
    this.#run = run;
  }

  add(group: number, item: Item): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      if (this.#waiting.size === 0) setImmediate(() => this.#flush());
      let calls = this.#waiting.get(group);
      if (calls === undefined) {
        calls = [];
        this.#waiting.set(group, calls);
      }
      calls.push({ item, settle: { resolve, reject } });
    });
  }

  #flush(): void {
    const waiting = this.#waiting;
    this.#waiting = new Map();
    for (const [group, calls] of waiting) {
      for (let start = 0; start < calls.length; start += MAX_KEYS) {
        const batch = calls.slice(start, start + MAX_KEYS);
        this.#run(
          group,
          batch.map((call) => call.item),
        ).then(
          (results) => {
            batch.forEach((call, index) => {
              call.settle.resolve(results[index] as Result);
            });
          },
          (error: unknown) => {
            for (const call of batch) call.settle.reject(error);
          },
        );
      }
    }
  }
}

interface Settle<Result> {
  resolve(result: Result): void;
  reject(error: unknown): void;
}
