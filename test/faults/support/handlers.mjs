// Handler module of the fault suite, loaded by real worker processes through HANDLERS_MODULE.
// Every completed handler run is recorded in a separate "effects" Redis (the user's own store,
// which the scenarios never crash), so the suite can count effects per event afterwards.
//
// Behaviour per event comes from `data.attributes`:
//   durationMs: how long the handler works (it honours ctx.signal, as handlers should).
//
// It also watches SPEC §6's "two workers never run the same event's handler at the same time":
// `running:<id>` names the process running the event; finding it held by a live process (a
// SIGKILLed one does not count) is recorded in the `overlaps` hash.
import { Redis } from 'ioredis';

const effects = new Redis(process.env.EFFECTS_REDIS_URL, {
  maxRetriesPerRequest: null,
  connectionName: `fault-handlers-${process.pid}`,
});
effects.on('error', () => {});
const pid = String(process.pid);

function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

function alive(otherPid) {
  try {
    process.kill(Number(otherPid), 0);
    return true;
  } catch {
    return false;
  }
}

async function handle(event, ctx) {
  const attributes = event.data?.attributes ?? {};
  const durationMs = Number(attributes.durationMs ?? 0);
  const running = `running:${event.id}`;
  const holder = await effects.set(running, pid, 'NX', 'GET');
  if (holder !== null) {
    if (alive(holder)) await effects.hincrby('overlaps', event.id, 1);
    await effects.set(running, pid);
  }
  try {
    // Which process holds the event now: the suite reads this to time recoveries after a kill.
    await effects.hset(`inflight:${pid}`, event.id, String(Date.now()));
    if (durationMs > 0) await pause(durationMs, ctx.signal);
    // The effect and who produced it, in one step: a duplicate can then be traced to its runs.
    await effects
      .multi()
      .hincrby('effects', event.id, 1)
      .rpush(`runs:${event.id}`, `${pid}@${ctx.attempt}@${Date.now()}`)
      .hdel(`inflight:${pid}`, event.id)
      .exec();
  } finally {
    if ((await effects.get(running)) === pid) await effects.del(running);
  }
}

export default {
  'resource.created': handle,
  'resource.updated': handle,
  'resource.deleted': handle,
};
