import { type DefaultJobOptions, optsEncodeMap } from 'bullmq';
import { DONE } from '../idempotency.js';

/**
 * One script call that looks up and adds a whole batch of events on a single Redis: for each
 * event its done-marker, then whether its job exists (and failed for good), and when the event is
 * new, the writes of BullMQ's `addStandardJob` for a plain job with a custom id (no delay,
 * priority, parent or deduplication): the job hash, the `added` and `waiting` stream entries,
 * the wait-list push and the worker marker. `enqueue-script.test.ts` holds the keys it leaves to
 * be those `Queue.add` leaves, byte for byte.
 *
 * What BullMQ's script repeats per job and cannot change within one atomic script is done once
 * per batch: the events stream's length setting, whether the queue is paused or at its global
 * concurrency, the id counter (one INCRBY), the pushes (one LPUSH of all, in order) and the
 * marker: about half the Redis CPU of running BullMQ's script per event (docs/performance.md).
 * Used only while BullMQ's `addStandardJob` is the reviewed text (`reviewed-scripts.ts`).
 *
 * With the event history on, each event added or known also gets its `delivery` record in the
 * shard's history stream, in the same atomic call (`history.ts` gives the format): `received`
 * for an added one, `duplicate` for a known one (a failed one is requeued, and recorded, by the
 * producer).
 *
 * KEYS: wait, paused, meta, id, completed, delayed, active, events, marker (BullMQ's order), the
 * failed set, then the N events' done-markers, then (history on) the history stream.
 * ARGV: the queue's key prefix (`<prefix>:<name>:`), the timestamp (ms), the JSON of the job
 * options every job shares (without its id), the number of values per event (3, or 8 with the
 * history), then for each event its job id, name and JSON data, and with the history its id,
 * `created`, receipt time (ms), key index and payload text.
 * Replies one number per event: 0 added, 1 known (done-marker or live job), 2 its job failed for
 * good.
 */
export const ENQUEUE_EVENTS = `
local rcall = redis.call
local waitKey, metaKey, idKey, activeKey = KEYS[1], KEYS[3], KEYS[4], KEYS[7]
local eventsKey, markerKey, failedKey = KEYS[8], KEYS[9], KEYS[10]
local prefix = ARGV[1]
local timestamp = ARGV[2]
local optsTail = ARGV[3] == '{}' and '}' or (',' .. string.sub(ARGV[3], 2))
local width = tonumber(ARGV[4])
local n = (#ARGV - 4) / width
local historyKey = KEYS[11 + n]
local states = {}
local added = {}
local maxEvents
for i = 1, n do
  local at = 4 + (i - 1) * width
  local jobId = ARGV[at + 1]
  local jobKey = prefix .. jobId
  local doneKey = KEYS[10 + i]
  -- Usually neither exists: one lookup answers that.
  local fresh = rcall('EXISTS', doneKey, jobKey) == 0
  if not fresh then
    if rcall('GET', doneKey) == '${DONE}' then
      states[i] = 1
    elseif rcall('EXISTS', jobKey) == 1 then
      if rcall('ZSCORE', failedKey, jobId) then states[i] = 2 else states[i] = 1 end
    else
      fresh = true
    end
  end
  if fresh then
    if maxEvents == nil then
      maxEvents = rcall('HGET', metaKey, 'opts.maxLenEvents')
      if not maxEvents then
        maxEvents = 10000
        rcall('HSET', metaKey, 'opts.maxLenEvents', maxEvents)
      end
    end
    local name = ARGV[at + 2]
    rcall('HMSET', jobKey, 'name', name, 'data', ARGV[at + 3],
      'opts', '{"jobId":' .. cjson.encode(jobId) .. optsTail,
      'timestamp', timestamp, 'delay', 0, 'priority', 0)
    rcall('XADD', eventsKey, '*', 'event', 'added', 'jobId', jobId, 'name', name)
    rcall('XADD', eventsKey, 'MAXLEN', '~', maxEvents, '*', 'event', 'waiting', 'jobId', jobId)
    added[#added + 1] = jobId
    states[i] = 0
  end
  if historyKey and states[i] ~= 2 then
    local fields = {'v', '1', 'kind', 'delivery', 'id', ARGV[at + 4], 'type', ARGV[at + 2],
      'created', ARGV[at + 5], 'at', ARGV[at + 6], 'key', ARGV[at + 7],
      'outcome', states[i] == 0 and 'received' or 'duplicate'}
    if states[i] == 0 then
      fields[#fields + 1] = 'payload'
      fields[#fields + 1] = ARGV[at + 8]
    end
    rcall('XADD', historyKey, '*', unpack(fields))
  end
end
if #added > 0 then
  rcall('INCRBY', idKey, #added)
  rcall('LPUSH', waitKey, unpack(added))
  local queue = rcall('HMGET', metaKey, 'paused', 'concurrency')
  local pausedOrMaxed = queue[1] ~= false or
    (queue[2] ~= false and rcall('LLEN', activeKey) >= tonumber(queue[2]))
  if not pausedOrMaxed then rcall('ZADD', markerKey, 0, '0') end
end
return states`;

/**
 * The options BullMQ stores for a job added with these queue defaults, as JSON, without the job
 * id (the script sets it per job): what `Queue.add` packs, BullMQ's `optsAsJSON` (undefined
 * options dropped, some renamed to short keys).
 */
export function storedJobOptions(defaults: DefaultJobOptions): string {
  const encode: Record<string, string> = optsEncodeMap;
  const stored: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(defaults)) {
    if (value !== undefined) stored[encode[name] ?? name] = value;
  }
  return JSON.stringify(stored);
}
