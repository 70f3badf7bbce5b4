import type { RedisClient } from './connection.js';
import { jobIdFor, type QueueSettings, queueShards, shardOf } from './naming.js';

/**
 * The trace context an event's job was enqueued with (its data's `trace`: the first delivery's),
 * or undefined when the job is gone or carries none. One `HGET` of the job's data: for a
 * redelivery's span link, only when that span is sampled.
 */
export async function storedTrace(
  client: RedisClient,
  settings: QueueSettings,
  eventId: string,
): Promise<Readonly<Record<string, string>> | undefined> {
  const shards = queueShards(settings);
  const shard = shards[shardOf(eventId, shards.length)];
  if (shard === undefined) return undefined;
  const text = await client.hget(`${shard.prefix}:${shard.name}:${jobIdFor(eventId)}`, 'data');
  if (text === null) return undefined;
  let trace: unknown;
  try {
    trace = (JSON.parse(text) as { trace?: unknown } | null)?.trace;
  } catch {
    return undefined;
  }
  if (trace === null || typeof trace !== 'object' || Array.isArray(trace)) return undefined;
  const fields = Object.entries(trace).filter(
    (entry): entry is [string, string] => typeof entry[1] === 'string',
  );
  return fields.length === 0 ? undefined : Object.fromEntries(fields);
}
