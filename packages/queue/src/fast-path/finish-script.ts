import { unpack } from 'msgpackr';
import { type MarkerLayout, markerLua } from '../done-markers.js';
import { PROCESSING } from '../idempotency.js';
import { DONE_GROUP, JOB_ID_PREFIX } from '../naming.js';
import { END_TURN, TAKE_TURN } from '../ordering.js';
import type { BullmqScript } from './reviewed-scripts.js';

/** Where BullMQ's `moveToFinished` unpacks its options (exactly once, in the reviewed text). */
const BULLMQ_OPTS = 'local opts = cmsgpack.unpack(ARGV[8])';

/**
 * BullMQ's `moveToFinished` (the reviewed text, run as a local function) with the worker's two
 * idempotency writes around it, so that a job costs the worker one round trip, as in a bare
 * BullMQ worker, instead of three (claim, done-mark, finish):
 *
 * - before finishing a job whose handler succeeded, its event's done-marker (`done-markers.ts`:
 *   the event of claim key ARGV[10], TTL ARGV[11] seconds, the previous layout's marker left
 *   until ARGV[17] during a rolling upgrade). It is the script's first write: when Redis refuses
 *   writes (maxmemory), the whole call is refused and no job is finished without its marker.
 *   With it, the end of the event's turn at its resource (per-resource ordering: state key
 *   ARGV[13], created ARGV[14], the event's type ARGV[15], owner ARGV[16]; see `ordering.ts`);
 * - after BullMQ has locked the slot's next job, that job's event claimed for the same lock
 *   token and lock duration (SET NX of `<ARGV[12]><event id>`, the event id read back from the
 *   job id), unless the event is marked done: a second job of a done event can arrive. When the
 *   claim was taken, the token is appended to BullMQ's reply as a fifth element (BullMQ reads
 *   the first four), so the worker knows the claim is its own without asking. A job whose event
 *   is done or already has a record is not claimed: the worker then claims the usual way, which
 *   sorts out done, busy or ours;
 * - when it claimed it and ARGV[18] is '1' (per-resource ordering), the fetched job's turn at its
 *   resource, for the same token and lock duration, read from the leading `turn` field of the
 *   job's data (`jobTurn`: `<created ms>:<key>`; state key ARGV[19] .. key, kept ARGV[11]
 *   seconds). The key, the created and the turn's reply follow the token in the reply (sixth to
 *   ninth elements), for the worker to use instead of taking the turn itself. A job without the
 *   field gets no turn here: the worker takes it.
 * - with the event history on, the attempt's record appended to the history stream ARGV[20]
 *   (ARGV[21] on: its fields and values, `history.ts`), whatever BullMQ's part answers (the
 *   attempt ran), so that it costs the worker no command of its own.
 *
 * KEYS and ARGV[1..9]: BullMQ's own; ARGV[8], its options, may be JSON instead of MessagePack
 * ({@link optionsAsJson}).
 */
export function fusedFinishScript(
  moveToFinished: BullmqScript,
  layout: MarkerLayout = 'buckets',
): string {
  return `
-- BullMQ's options, decoded once for its body and for the claim below: JSON when the worker
-- could send them so (a JSON object starts with '{'), else BullMQ's MessagePack.
local opts
if string.byte(ARGV[8], 1) == 123 then opts = cjson.decode(ARGV[8]) else opts = cmsgpack.unpack(ARGV[8]) end
local function bullmqMoveToFinished(KEYS, ARGV)
${moveToFinished.content.replace(BULLMQ_OPTS, 'local opts = opts')}
end
${END_TURN}
${TAKE_TURN}
${markerLua(layout)}
local doneGroup = '${DONE_GROUP}'
local doneL, doneP, now
if ARGV[10] ~= '' then
  doneL, doneP, now = markAllDone(doneGroup, {ARGV[10]}, 1, tonumber(ARGV[11]), tonumber(ARGV[17]))
end
if ARGV[13] ~= '' then
  endTurn(ARGV[13], ARGV[16], ARGV[14], ARGV[15], ARGV[11])
end
if ARGV[20] ~= nil and ARGV[20] ~= '' then
  redis.call('XADD', ARGV[20], '*', unpack(ARGV, 21))
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
    if doneL == nil then
      doneL, doneP = markersLevel(doneGroup)
      now = clock()
    end
    if not markedUntil(doneGroup, doneL, doneP, eventId, now)
        and redis.call('SET', ARGV[12] .. eventId, '${PROCESSING}' .. token,
          'PX', opts['lockDuration'], 'NX') then
      result[5] = token
      if ARGV[18] == '1' then
        local fields = result[1]
        local data
        for i = 1, #fields - 1, 2 do
          if fields[i] == 'data' then
            data = fields[i + 1]
            break
          end
        end
        local created, key
        if data then created, key = string.match(data, '^{"turn":"(%d*):([^"\\\\]+)",') end
        if key then
          local turn = takeTurn(ARGV[19] .. key, token, opts['lockDuration'], created, ARGV[11],
            turnClock())
          result[6] = key
          result[7] = created
          result[8] = turn[1]
          result[9] = turn[2] or 0
        end
      end
    end
  end
end
return result`;
}

/**
 * BullMQ's MessagePack-encoded finishing options as JSON, when they are plain JSON values (as
 * BullMQ 6.7's are: strings, finite numbers, booleans, absent values, nested objects), else as
 * they came. A Buffer among the arguments makes ioredis build the whole command piece by piece
 * (docs/performance.md). Absent values are left out, as MessagePack's nil decodes to a missing
 * key in Lua.
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
