import type { RedisClient } from './connection.js';
import { resourceStateKey } from './naming.js';

/**
 * One event's turn at its resource (SPEC §6, per-resource ordering): which resource, and what
 * the event would make of it.
 */
export interface ResourceTurn {
  /** The resource key (`data.id` of the `resource.*` types). */
  readonly key: string;
  /** The event's `created` in milliseconds; undefined: never judged stale. */
  readonly createdMs: number | undefined;
  /** The event's type: a `resource.deleted` leaves a tombstone, a `resource.created` lifts it. */
  readonly type: string;
}

/**
 * How taking a turn went: the resource is this attempt's until it ends; another event of the
 * resource runs now (`busy`, with how long its lock may still hold); or the event is older than
 * the newest applied to its resource, or than its deletion (`stale`).
 */
export type TurnResult =
  | { readonly outcome: 'acquired' }
  | { readonly outcome: 'busy'; readonly heldForMs: number }
  | { readonly outcome: 'stale'; readonly deleted: boolean };

/**
 * The body of a turn, for one resource state key `key` and its arguments (owner token, lock
 * milliseconds, created milliseconds or '', seconds to keep the state). The state is one hash
 * per resource (`groq:resource:<key>`, single key: it runs on a Cluster too): `owner` and `until`
 * while an event of it runs, `newest` (the newest `created` applied) and `deleted`. Redis' clock
 * decides whether a lock has lapsed, so workers' clocks need not agree.
 * Replies {1} acquired, {2, ms left} busy, {3, deleted} stale. `now`: Redis's clock in
 * milliseconds (`turnClock()`), read once per script.
 */
export const TAKE_TURN = `
local function turnClock()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local function takeTurn(key, owner, lockMs, created, keepSeconds, now)
  local state = redis.call('HMGET', key, 'owner', 'until', 'newest', 'deleted')
  if state[1] and state[1] ~= owner and tonumber(state[2]) > now then
    return {2, tonumber(state[2]) - now}
  end
  if created ~= '' and state[3] and tonumber(created) < tonumber(state[3]) then
    return {3, state[4] == '1' and 1 or 0}
  end
  redis.call('HSET', key, 'owner', owner, 'until', now + tonumber(lockMs))
  redis.call('EXPIRE', key, keepSeconds)
  return {1}
end`;

/**
 * The end of a turn, for one resource state key: the lock released if it is still `owner`'s,
 * and, when the event's handler ran (`effect` is its type), the state moved on: `newest` raised
 * to `created`, a tombstone set by a deletion and lifted by a creation. `effect` '' only
 * releases.
 */
export const END_TURN = `
local function endTurn(key, owner, created, effect, keepSeconds)
  local state = redis.call('HMGET', key, 'owner', 'newest')
  if state[1] == owner then
    redis.call('HDEL', key, 'owner', 'until')
  end
  if effect ~= '' then
    local moved = {}
    if created ~= '' and (not state[2] or tonumber(created) > tonumber(state[2])) then
      moved[#moved + 1] = 'newest'
      moved[#moved + 1] = created
    end
    if effect == 'resource.deleted' then
      moved[#moved + 1] = 'deleted'
      moved[#moved + 1] = '1'
    elseif effect == 'resource.created' then
      moved[#moved + 1] = 'deleted'
      moved[#moved + 1] = '0'
    end
    if #moved > 0 then redis.call('HSET', key, unpack(moved)) end
    redis.call('EXPIRE', key, keepSeconds)
  end
end`;

const RENEW_TURN = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'until', now + tonumber(ARGV[2]))
  return 1
end
return 0`;

type TurnClient = RedisClient & {
  groqTakeTurn(
    key: string,
    owner: string,
    lockMs: number,
    created: string,
    keep: number,
  ): Promise<number[]>;
  groqEndTurn(
    key: string,
    owner: string,
    created: string,
    effect: string,
    keep: number,
  ): Promise<number>;
  groqRenewTurn(key: string, owner: string, lockMs: number): Promise<number>;
};

/** The arguments of a turn's scripts after the owner: `created` as Lua reads it. */
export function createdArg(turn: ResourceTurn): string {
  return turn.createdMs === undefined ? '' : String(turn.createdMs);
}

/** A {@link TAKE_TURN} reply as a {@link TurnResult}. */
export function turnResult(reply: unknown): TurnResult {
  const [code, value] = (Array.isArray(reply) ? reply : []) as number[];
  if (code === 1) return { outcome: 'acquired' };
  if (code === 2) return { outcome: 'busy', heldForMs: Number(value ?? 0) };
  if (code === 3) return { outcome: 'stale', deleted: value === 1 };
  throw new Error(`unexpected turn reply ${JSON.stringify(reply)}`);
}

/**
 * Per-resource turns, one command per call (each touches one resource's key, so it works on a
 * single Redis and on a Cluster alike, where the key lives with the resource).
 */
export class ResourceTurns {
  readonly #client: TurnClient;
  /** Seconds a resource's state is kept after its last change (`IDEMPOTENCY_TTL_SECONDS`). */
  readonly #keepSeconds: number;

  constructor(client: RedisClient, keepSeconds: number) {
    client.defineCommand('groqTakeTurn', {
      numberOfKeys: 1,
      lua: `${TAKE_TURN}\nreturn takeTurn(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], turnClock())`,
    });
    client.defineCommand('groqEndTurn', {
      numberOfKeys: 1,
      lua: `${END_TURN}\nendTurn(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])\nreturn 1`,
    });
    client.defineCommand('groqRenewTurn', { numberOfKeys: 1, lua: RENEW_TURN });
    this.#client = client as TurnClient;
    this.#keepSeconds = keepSeconds;
  }

  /** Takes the resource's turn for `owner` (the job's lock token), locked for `lockMs`. */
  async take(turn: ResourceTurn, owner: string, lockMs: number): Promise<TurnResult> {
    return turnResult(
      await this.#client.groqTakeTurn(
        resourceStateKey(turn.key),
        owner,
        lockMs,
        createdArg(turn),
        this.#keepSeconds,
      ),
    );
  }

  /** Ends `owner`'s turn; `applied`: the handler ran, so the resource's state moves on. */
  async end(turn: ResourceTurn, owner: string, applied: boolean): Promise<void> {
    await this.#client.groqEndTurn(
      resourceStateKey(turn.key),
      owner,
      createdArg(turn),
      applied ? turn.type : '',
      this.#keepSeconds,
    );
  }

  /** Extends `owner`'s lock on the resource; false when it is no longer `owner`'s. */
  async renew(key: string, owner: string, lockMs: number): Promise<boolean> {
    return (await this.#client.groqRenewTurn(resourceStateKey(key), owner, lockMs)) === 1;
  }
}

/** Redis key of a queue's jobs waiting for a busy resource (`groq-webhooks stats`). */
export function turnWaitsKey(queueQualifiedName: string): string {
  return `${queueQualifiedName}:resource-waits`;
}

/** How long after its due time a wait entry is forgotten (the job ran, or was removed). */
const WAIT_ENTRY_GRACE_MS = 60_000;

/**
 * Notes that `jobId` of the queue waits for a busy resource until `dueMs`: a sorted set per
 * queue, by due time, so `stats` counts the waits still due; old entries are trimmed as new ones
 * come. One key in the queue's slot: it runs on a Cluster too.
 */
export async function noteTurnWait(
  client: RedisClient,
  queueQualifiedName: string,
  jobId: string,
  dueMs: number,
): Promise<void> {
  const key = turnWaitsKey(queueQualifiedName);
  await client
    .pipeline()
    .zadd(key, dueMs, jobId)
    .zremrangebyscore(key, '-inf', dueMs - WAIT_ENTRY_GRACE_MS)
    .exec();
}
