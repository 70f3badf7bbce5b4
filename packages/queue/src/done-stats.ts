import type { RedisClient } from './connection.js';
import { readMarkerRecord } from './marker-record.js';
import { DONE_GROUP, doneGroupOfSlot } from './naming.js';

/** What `groq-webhooks stats` says of the done-markers (SPEC §6's memory of handled events). */
export interface RememberedEvents {
  /**
   * Events remembered as done in the compact layout: markers held, counting expired ones the
   * sweep has not reached yet (at most one pass, about an hour).
   */
  events: number;
  /**
   * Their Redis memory in bytes, estimated from `MEMORY USAGE` of a sample of buckets (within
   * about 10 % of `used_memory`'s growth in the layout benchmark).
   */
  bytes: number;
  /** `bytes / events`, or null without markers. */
  bytesPerEvent: number | null;
  /**
   * Until when markers of the previous layout (one `groq:event:<id>` key per event, not counted
   * above) may still exist: an ISO time, or null when none can.
   */
  oldLayoutUntil: string | null;
}

/** Buckets (single Redis) or groups (Cluster) whose memory is measured for the estimate. */
const SAMPLES = 64;
const CLUSTER_SLOTS = 16_384;

/**
 * Counts the remembered events and estimates their memory. A single Redis: one group. A
 * Cluster: the counts of the 16 384 slot groups (sent at once, ioredis routing each), memory
 * from 64 random groups.
 */
export async function rememberedEvents(
  client: RedisClient,
  options: { now?: number; random?: () => number } = {},
): Promise<RememberedEvents> {
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now();
  const record = await readMarkerRecord(client);
  const oldUntilMs = record === undefined ? 0 : record.oldUntil * 1000;
  const oldLayoutUntil = oldUntilMs > now ? new Date(oldUntilMs).toISOString() : null;
  let events: number;
  let bytes: number;
  if (client.isCluster) {
    const counts = await Promise.all(
      Array.from({ length: CLUSTER_SLOTS }, (_, slot) => client.hget(doneGroupOfSlot(slot), 'n')),
    );
    events = counts.reduce((sum, count) => sum + Math.max(0, Number(count ?? 0)), 0);
    const sampled = await Promise.all(
      Array.from({ length: SAMPLES }, () =>
        groupBytes(client, doneGroupOfSlot(Math.floor(random() * CLUSTER_SLOTS)), random),
      ),
    );
    bytes = events === 0 ? 0 : (sum(sampled) / SAMPLES) * CLUSTER_SLOTS;
  } else {
    events = Math.max(0, Number((await client.hget(DONE_GROUP, 'n')) ?? 0));
    bytes = events === 0 ? 0 : await groupBytes(client, DONE_GROUP, random);
  }
  return {
    events,
    bytes: Math.round(bytes),
    bytesPerEvent: events === 0 ? null : Math.round((bytes / events) * 10) / 10,
    oldLayoutUntil,
  };
}

/**
 * One marker group's memory (bytes): its state hash and its buckets, from `MEMORY USAGE` of a
 * sample of at most 64 of them (exact for listpacks).
 */
export async function groupBytes(
  client: RedisClient,
  group: string,
  random: () => number = Math.random,
): Promise<number> {
  const [level, split] = await client.hmget(group, 'L', 'p');
  if (level === null) return 0;
  const buckets = 2 ** Number(level) + Number(split ?? 0);
  const samples = Math.min(SAMPLES, buckets);
  const sampled = Array.from({ length: samples }, (_, i) =>
    samples === buckets ? i : Math.floor(random() * buckets),
  );
  // The keys share the group's slot: one pipeline, on a Cluster too.
  const pipeline = client.pipeline();
  for (const bucket of sampled) pipeline.memory('USAGE', `${group}:${bucket}`, 'SAMPLES', 0);
  pipeline.memory('USAGE', group, 'SAMPLES', 0);
  const replies = ((await pipeline.exec()) ?? []).map(([, value]) => Number(value ?? 0));
  const state = replies.pop() ?? 0;
  return (sum(replies) / Math.max(1, replies.length)) * buckets + state;
}

function sum(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0);
}
