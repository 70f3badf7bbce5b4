import { type DefaultJobOptions, optsEncodeMap } from 'bullmq';
// BullMQ's own Lua for Queue.add of a plain job (no delay, priority or parent), fully resolved.
// The package has no `exports` map, so its built scripts are importable; the version is pinned.
import { addStandardJob } from 'bullmq/dist/cjs/scripts/addStandardJob-9.js';
import { DONE } from './idempotency.js';

/**
 * One script call that looks up and adds a whole batch of events on a single Redis:
 * for each event its done-marker, then whether its job exists (and failed for good), and when
 * the event is new, BullMQ's own `addStandardJob` script body, run as a Lua function. The jobs
 * it writes are BullMQ's to the byte (the same script, keys and arguments as `Queue.addBulk`;
 * `enqueue-script.test.ts` compares them with `Queue.add`), but a batch costs one command
 * instead of one check script plus one `addStandardJob` per event, and no per-job `Job`
 * object, msgpack encoding or reply on the Node side.
 *
 * KEYS: the 9 keys of `addStandardJob` (wait, paused, meta, id, completed, delayed, active,
 * events, marker), the failed set, then the N events' done-markers.
 * ARGV: the queue's key prefix (`<prefix>:<name>:`), the timestamp (ms), the JSON of the job
 * options every job shares, then for each event its job id, job name and JSON data.
 * Replies one number per event: 0 added, 1 known (done-marker or live job), 2 its job failed for
 * good, or BullMQ's negative error code.
 */
export const ENQUEUE_EVENTS = `
local function bullmqAddStandardJob(KEYS, ARGV)
${addStandardJob.content}
end
local queueKeys = {KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]}
local failedKey = KEYS[10]
local prefix = ARGV[1]
local timestamp = tonumber(ARGV[2])
local opts = cjson.decode(ARGV[3])
local n = (#ARGV - 3) / 3
local states = {}
for i = 1, n do
  local jobId = ARGV[3 * i + 1]
  if redis.call('GET', KEYS[10 + i]) == '${DONE}' then
    states[i] = 1
  elseif redis.call('EXISTS', prefix .. jobId) == 1 then
    if redis.call('ZSCORE', failedKey, jobId) then states[i] = 2 else states[i] = 1 end
  else
    local name = ARGV[3 * i + 2]
    opts['jobId'] = jobId
    local added = bullmqAddStandardJob(queueKeys, {
      cmsgpack.pack({prefix, jobId, name, timestamp}), ARGV[3 * i + 3], cmsgpack.pack(opts)})
    if type(added) == 'number' and added < 0 then states[i] = added else states[i] = 0 end
  end
end
return states`;

if (addStandardJob.keys !== 9 || !addStandardJob.content.includes('cmsgpack.unpack(ARGV[1])')) {
  // A BullMQ upgrade changed the script's interface: fail at start-up, not on the first webhook.
  throw new Error(
    'bullmq addStandardJob script changed: review packages/queue/src/enqueue-script.ts',
  );
}

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
