// BullMQ's own Lua for finishing a job (and fetching the slot's next one), fully resolved, and
// the version that names its command on a connection. The package has no `exports` map, so its
// built scripts are importable; the version is pinned.
import { moveToFinished } from 'bullmq/dist/cjs/scripts/moveToFinished-14.js';
import { version as bullmqVersion } from 'bullmq/dist/cjs/version.js';
import { unpack } from 'msgpackr';
import type { RedisClient } from './connection.js';
import { DONE, PROCESSING, retryDoneMark } from './idempotency.js';
import { idempotencyKey, JOB_ID_PREFIX } from './naming.js';
import type { EventJobData } from './queues.js';

/** Where BullMQ's script unpacks its options (exactly once). */
const BULLMQ_OPTS = 'local opts = cmsgpack.unpack(ARGV[8])';

/**
 * BullMQ's `moveToFinished` with the worker's two idempotency writes folded in, so that on a
 * single Redis a job costs the worker one round trip, as in a bare BullMQ worker, instead of
 * three (claim, done-mark, finish):
 *
 * - before finishing a job whose handler succeeded, its event's done-marker (ARGV[10], TTL
 *   ARGV[11] seconds). It is the script's first write: when Redis refuses writes (maxmemory),
 *   the whole call is refused and nothing is finished without its marker;
 * - after BullMQ has locked the slot's next job, that job's event claimed for the same lock
 *   token and lock duration (SET NX of `<ARGV[12]><event id>`, the event id read back from the
 *   job id), and when the claim was taken, `"fetchClaim":"<token>"` added to the copy of the
 *   job's data the reply carries (Redis is not changed), which tells the worker the claim is
 *   its own without asking. A job whose event already has a record gets no such field: the
 *   worker then claims the usual way, which sorts out done, busy or ours.
 *
 * KEYS and ARGV[1..9]: BullMQ's own. A BullMQ upgrade that changes them fails at start-up.
 */
export const FINISH_JOB = `
-- BullMQ's options, decoded once for its body and for the claim below: JSON when the worker
-- could send them so (a JSON object starts with '{'), else BullMQ's MessagePack.
local opts
if string.byte(ARGV[8], 1) == 123 then opts = cjson.decode(ARGV[8]) else opts = cmsgpack.unpack(ARGV[8]) end
local function bullmqMoveToFinished(KEYS, ARGV)
${moveToFinished.content.replace(BULLMQ_OPTS, 'local opts = opts')}
end
if ARGV[10] ~= '' then
  redis.call('SET', ARGV[10], '${DONE}', 'EX', ARGV[11])
end
local result = bullmqMoveToFinished(KEYS,
  {ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]})
if type(result) == 'table' and type(result[1]) == 'table' and ARGV[12] ~= '' then
  local jobId = result[2]
  if string.sub(jobId, 1, ${JOB_ID_PREFIX.length}) == '${JOB_ID_PREFIX}' then
    local eventId = string.sub(jobId, ${JOB_ID_PREFIX.length + 1})
    if string.find(eventId, '%', 1, true) then
      eventId = string.gsub(eventId, '%%3A', ':')
      eventId = string.gsub(eventId, '%%25', '%%')
    end
    local token = opts['token']
    if redis.call('SET', ARGV[12] .. eventId, '${PROCESSING}' .. token,
        'PX', opts['lockDuration'], 'NX') then
      local fields = result[1]
      for i = 1, #fields, 2 do
        if fields[i] == 'data' then
          local data = fields[i + 1]
          -- Only a JSON object with members takes one more (BullMQ's own default data is {}).
          if string.sub(data, -1) == '}' and not string.find(data, '^%s*{%s*}$') then
            fields[i + 1] = string.sub(data, 1, -2) .. ',"fetchClaim":' .. cjson.encode(token) .. '}'
          end
          break
        end
      end
    end
  end
end
return result`;

if (
  moveToFinished.keys !== 14 ||
  moveToFinished.content.split(BULLMQ_OPTS).length !== 2 ||
  !moveToFinished.content.includes('return {rcall("HGETALL", jobKey), jobId, 0, 0}')
) {
  // A BullMQ upgrade changed the script's interface: fail at start-up, not on the first job.
  throw new Error(
    'bullmq moveToFinished script changed: review packages/queue/src/finish-script.ts',
  );
}

/**
 * BullMQ's `moveToFinished` arguments: 14 keys, then 9 ARGV: jobId 1st, target 5th, options 8th
 * (MessagePack), fields 9th.
 */
const KEY_COUNT = 14;
const JOB_ID_ARG = KEY_COUNT;
const TARGET_ARG = KEY_COUNT + 4;
const OPTIONS_ARG = KEY_COUNT + 7;
const FIELDS_ARG = KEY_COUNT + 8;
/** Replies that mean Redis ran nothing and may take the same call a moment later. */
const REFUSAL = /^(OOM|READONLY|LOADING|MASTERDOWN|TRYAGAIN)\b/;

type FinishClient = RedisClient & {
  groqFinishJob(args: (string | number | Buffer)[]): Promise<unknown>;
} & Record<string, unknown>;

/**
 * Folds the worker's claim and done-mark into BullMQ's own job finishing (see {@link FINISH_JOB}),
 * on the connections of the BullMQ workers of a single Redis (not a Cluster: there the
 * idempotency keys live in other slots than the queue's). The processor says which finishing
 * jobs must mark their event done; everything else BullMQ does stays as it is.
 */
export class JobFinisher {
  readonly #doneTtlSeconds: number;
  /** Event id by job id, for jobs whose handler succeeded and whose finish is still to come. */
  readonly #done = new Map<string, string>();

  constructor(options: { doneTtlSeconds: number }) {
    this.#doneTtlSeconds = options.doneTtlSeconds;
  }

  /**
   * Takes over BullMQ's `moveToFinished` command on a worker's connection. Call it once the
   * worker is ready (BullMQ has defined its commands) and before it runs.
   */
  install(connection: RedisClient): void {
    if (connection.isCluster) throw new Error('JobFinisher works on a single Redis only');
    const client = connection as FinishClient;
    const name = `moveToFinished:${bullmqVersion}`;
    if (typeof client[name] !== 'function') {
      throw new Error(`BullMQ has not defined ${name} on this connection yet`);
    }
    client.defineCommand('groqFinishJob', { numberOfKeys: KEY_COUNT, lua: FINISH_JOB });
    const claimPrefix = idempotencyKey('');
    client[name] = (args: (string | number | Buffer)[]) => {
      const jobId = String(args[JOB_ID_ARG]);
      const eventId = args[TARGET_ARG] === 'completed' ? this.#done.get(jobId) : undefined;
      if (eventId !== undefined) this.#done.delete(jobId);
      const full = args.slice(0, FIELDS_ARG);
      const options = full[OPTIONS_ARG];
      if (options !== undefined) full[OPTIONS_ARG] = optionsAsJson(options);
      full.push(
        args[FIELDS_ARG] ?? '',
        eventId === undefined ? '' : idempotencyKey(eventId),
        this.#doneTtlSeconds,
        claimPrefix,
      );
      // Without a marker to write, BullMQ handles its own errors as it always does.
      if (eventId === undefined) return client.groqFinishJob(full);
      return retryDoneMark(() => client.groqFinishJob(full), isRefusal);
    };
  }

  /** The handler of this job's event succeeded: its finish marks the event done first. */
  markDoneOnFinish(jobId: string, eventId: string): void {
    this.#done.set(jobId, eventId);
  }

  /**
   * Events whose handler succeeded but whose job was never finished (the worker closed first):
   * they still need their done-marker. Forgets them.
   */
  takeUnfinished(): string[] {
    const eventIds = [...this.#done.values()];
    this.#done.clear();
    return eventIds;
  }
}

/**
 * BullMQ's MessagePack-encoded finishing options as JSON, when they are plain JSON values (as
 * BullMQ 6.7's are: strings, finite numbers, booleans, absent values, nested objects), else as
 * they came. A Buffer among the arguments makes ioredis build the whole command piece by piece
 * (measured: 11.3 µs a call against 4.2 µs for all strings, 6.5 µs with this conversion).
 * Absent values are left out, as MessagePack's nil decodes to a missing key in Lua.
 */
export function optionsAsJson(packed: string | number | Buffer): string | number | Buffer {
  if (!Buffer.isBuffer(packed)) return packed;
  let plain = true;
  const json = JSON.stringify(
    unpack(packed),
    function replace(this: Record<string, unknown>, key: string, value: unknown) {
      // The value before any toJSON (a Date arrives here as its string).
      const original = this[key];
      if (original === null || original === undefined) return undefined;
      if (typeof original === 'object') {
        if (Array.isArray(original) || Object.getPrototypeOf(original) !== Object.prototype) {
          plain = false;
        }
      } else if (typeof original === 'number') {
        if (!Number.isFinite(original)) plain = false;
      } else if (typeof original !== 'string' && typeof original !== 'boolean') {
        plain = false;
      }
      return value;
    },
  );
  return plain && typeof json === 'string' && json.startsWith('{') ? json : packed;
}

/** True when fetching this job already claimed its event for `token` (see {@link FINISH_JOB}). */
export function claimedAtFetch(data: EventJobData, token: string): boolean {
  return data.fetchClaim === token;
}

function isRefusal(error: unknown): boolean {
  return error instanceof Error && REFUSAL.test(error.message);
}
