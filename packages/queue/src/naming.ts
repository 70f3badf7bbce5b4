import { createHash } from 'node:crypto';
import type { CommonConfig } from '@groq-webhooks/config';

/** One queue of the (possibly sharded) event queue. */
export interface QueueShard {
  /** 0-based shard index. */
  index: number;
  /** BullMQ queue name. */
  name: string;
  /** BullMQ key prefix, with its own Redis Cluster hash tag. */
  prefix: string;
}

/** Queue naming settings. */
export type QueueSettings = Pick<CommonConfig, 'queueName' | 'queuePrefix' | 'queueShards'>;

/**
 * The queues events are spread over. With one shard this is exactly `QUEUE_NAME` under
 * `QUEUE_PREFIX`; with N, shard i is `<name>-i` under a prefix with its own hash tag, chosen so
 * that its slot falls in the i-th of N equal slot ranges: on a Cluster whose masters split the
 * slots evenly (what `redis-cli --cluster create` does), N shards land on N different masters.
 */
export function queueShards(settings: QueueSettings): QueueShard[] {
  if (settings.queueShards <= 1) {
    return [{ index: 0, name: settings.queueName, prefix: settings.queuePrefix }];
  }
  return Array.from({ length: settings.queueShards }, (_, index) => ({
    index,
    name: `${settings.queueName}-${index}`,
    prefix: shardPrefix(settings.queuePrefix, index, settings.queueShards),
  }));
}

function shardPrefix(prefix: string, index: number, count: number): string {
  const tag = /\{([^{}]*)\}/.exec(prefix);
  if (!tag) return `${prefix}-${index}`;
  const low = Math.floor((index * CLUSTER_SLOTS) / count);
  const high = Math.floor(((index + 1) * CLUSTER_SLOTS) / count);
  for (let attempt = 0; ; attempt++) {
    const candidate = attempt === 0 ? `${tag[1]}-${index}` : `${tag[1]}-${index}.${attempt}`;
    const slot = clusterSlot(candidate);
    if (slot >= low && slot < high) return prefix.replace(tag[0], `{${candidate}}`);
  }
}

const CLUSTER_SLOTS = 16384;

/** Redis Cluster's slot of a hash tag: CRC16 (XMODEM) modulo 16384. */
export function clusterSlot(tag: string): number {
  let crc = 0;
  for (const byte of Buffer.from(tag, 'utf8')) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc % CLUSTER_SLOTS;
}

/** Stable shard of an event id: the first 4 bytes of its SHA-1, modulo the shard count. */
export function shardOf(eventId: string, shardCount: number): number {
  if (shardCount <= 1) return 0;
  return createHash('sha1').update(eventId).digest().readUInt32BE(0) % shardCount;
}

/** What every job id made by {@link jobIdFor} starts with. */
export const JOB_ID_PREFIX = 'evt-';

/**
 * BullMQ job id for an event id. BullMQ ids may not contain `:` nor be integers, so `%` and `:`
 * are percent-escaped (which keeps the mapping injective) and a constant prefix is added (which
 * keeps it from ever being an integer).
 */
export function jobIdFor(eventId: string): string {
  return JOB_ID_PREFIX + eventId.replace(/%/g, '%25').replace(/:/g, '%3A');
}

/** What every job id made by {@link replayJobIdFor} starts with. */
export const REPLAY_JOB_ID_PREFIX = 'replay-';

/**
 * BullMQ job id of an event's re-run by one replay command: scoped by the replay id (which holds
 * no `-`), so each replay makes a new job and one replay never makes two for the same event.
 * Escaped like {@link jobIdFor}.
 */
export function replayJobIdFor(replayId: string, eventId: string): string {
  return `${REPLAY_JOB_ID_PREFIX}${replayId}-${eventId.replace(/%/g, '%25').replace(/:/g, '%3A')}`;
}

/** The event id a job id was made from, or undefined when it was not made by {@link jobIdFor}. */
export function eventIdFromJobId(jobId: string): string | undefined {
  if (!jobId.startsWith(JOB_ID_PREFIX)) return undefined;
  return jobId.slice(JOB_ID_PREFIX.length).replace(/%3A/g, ':').replace(/%25/g, '%');
}

/** Redis key of an event's idempotency record (SPEC §6). */
export function idempotencyKey(eventId: string): string {
  return `groq:event:${eventId}`;
}

/** Redis key of a resource's ordering state (SPEC §6 per-resource ordering). */
export function resourceStateKey(resourceKey: string): string {
  return `groq:resource:${resourceKey}`;
}
