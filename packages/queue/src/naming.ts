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
 * `QUEUE_PREFIX`; with N, shard i is `<name>-i` under a prefix whose hash tag ends in `-i`, so
 * on a Redis Cluster each shard's keys live in their own slot (and can land on their own master).
 */
export function queueShards(settings: QueueSettings): QueueShard[] {
  if (settings.queueShards <= 1) {
    return [{ index: 0, name: settings.queueName, prefix: settings.queuePrefix }];
  }
  return Array.from({ length: settings.queueShards }, (_, index) => ({
    index,
    name: `${settings.queueName}-${index}`,
    prefix: shardPrefix(settings.queuePrefix, index),
  }));
}

function shardPrefix(prefix: string, index: number): string {
  const tag = /\{([^{}]*)\}/.exec(prefix);
  if (tag) return prefix.replace(tag[0], `{${tag[1]}-${index}}`);
  return `${prefix}-${index}`;
}

/** Stable shard of an event id: the first 4 bytes of its SHA-1, modulo the shard count. */
export function shardOf(eventId: string, shardCount: number): number {
  if (shardCount <= 1) return 0;
  return createHash('sha1').update(eventId).digest().readUInt32BE(0) % shardCount;
}

const JOB_ID_PREFIX = 'evt-';

/**
 * BullMQ job id for an event id. BullMQ ids may not contain `:` nor be integers, so `%` and `:`
 * are percent-escaped (which keeps the mapping injective) and a constant prefix is added (which
 * keeps it from ever being an integer).
 */
export function jobIdFor(eventId: string): string {
  return JOB_ID_PREFIX + eventId.replace(/%/g, '%25').replace(/:/g, '%3A');
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
