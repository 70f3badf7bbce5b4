// Test handler module: records every effect in Redis so tests can count them.
// The behaviour of each event is chosen by its data (see `Behaviour`).
import {
  defineHandlers,
  type GroqEvent,
  type HandlerContext,
  type HandlerMap,
  NonRetryableError,
} from '@groq-webhooks/core';
import { createRedis, type RedisClient } from '@groq-webhooks/queue';

/** What a test event asks its handler to do, in `event.data`. */
export interface Behaviour {
  behaviour?:
    | 'ok'
    | 'flaky'
    | 'fail'
    | 'non-retryable'
    | 'slow'
    | 'ignore-signal'
    | 'refuse-writes';
  /** flaky: attempts that fail before one succeeds. */
  failTimes?: number;
  /** slow / ignore-signal: how long the handler runs; refuse-writes: how long Redis refuses writes. */
  ms?: number;
}

/**
 * Handlers that record into `redis`: `effects` (hash eventId → count), `effects-by-pid`,
 * `attempts:<id>` and `starts:<id>` (lists), `aborted` (hash → abort reason), `overlaps` (set).
 */
export function recordingHandlers(redis: () => RedisClient): HandlerMap {
  const handle = async (event: GroqEvent, ctx: HandlerContext): Promise<void> => {
    const client = redis();
    const id = event.id;
    ctx.signal.addEventListener('abort', () => {
      const reason = ctx.signal.reason;
      void client.hset('aborted', id, reason instanceof Error ? reason.name : String(reason));
    });
    // Another live process running this event's handler right now is an overlap; a SIGKILLed
    // one leaves its pid behind, which is why liveness is checked.
    const pid = String(process.pid);
    await client.sadd(`running:${id}`, pid);
    const others = (await client.smembers(`running:${id}`)).filter((other) => other !== pid);
    if (others.some(isAlive)) await client.sadd('overlaps', id);
    await client.rpush(`attempts:${id}`, String(ctx.attempt));
    await client.rpush(`starts:${id}`, String(process.pid));
    try {
      const data = event.data as Behaviour;
      switch (data.behaviour) {
        case 'flaky':
          if (ctx.attempt <= (data.failTimes ?? 2))
            throw new Error(`flaky failure on attempt ${ctx.attempt}`);
          break;
        case 'fail':
          throw new Error(`always fails (attempt ${ctx.attempt})`);
        case 'non-retryable':
          throw new NonRetryableError('resource is gone for good');
        case 'slow':
          await sleep(data.ms ?? 1000, ctx.signal);
          break;
        case 'ignore-signal':
          await sleep(data.ms ?? 1000);
          break;
        default:
          break;
      }
      // Two commands, not MULTI: the keys live in different slots on a Redis Cluster.
      await client.hincrby('effects', id, 1);
      await client.hincrby('effects-by-pid', String(process.pid), 1);
      if (data.behaviour === 'refuse-writes') {
        // Redis refuses every write (OOM under noeviction) right after the effect, as in a
        // failover: the worker's done-mark fails until writes come back.
        await client.config('SET', 'maxmemory', '1');
        setTimeout(() => void client.config('SET', 'maxmemory', '0'), data.ms ?? 500);
      }
    } finally {
      await client.srem(`running:${id}`, pid);
    }
  };
  return defineHandlers({
    'resource.created': handle,
    'resource.updated': handle,
    'resource.deleted': handle,
  });
}

function isAlive(pid: string): boolean {
  try {
    process.kill(Number(pid), 0);
    return true;
  } catch {
    return false;
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

let client: RedisClient | undefined;

// In a worker process the Redis to record into comes from the environment.
export default recordingHandlers(() => {
  if (client === undefined) {
    const redisUrl = process.env.EFFECTS_REDIS_URL;
    if (redisUrl === undefined) throw new Error('EFFECTS_REDIS_URL is not set');
    client = createRedis({ redisUrl, redisClusterNodes: undefined }, 'worker', 'test-effects');
  }
  return client;
});
