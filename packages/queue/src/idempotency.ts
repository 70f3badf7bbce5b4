import type { RedisClient } from './connection.js';
import { idempotencyKey } from './naming.js';

/** Value of an idempotency record once the event's handler has finished. */
export const DONE = 'done';
const PROCESSING = 'processing:';

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

type ScriptClient = RedisClient & {
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
}
