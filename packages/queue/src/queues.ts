import type { JobConfig } from '@groq-webhooks/config';
import { createdMillis, type Envelope, isEventType, resourceKeyOf } from '@groq-webhooks/core';
import { Queue } from 'bullmq';
import type { RedisClient } from './connection.js';
import { jobOptions } from './job-options.js';
import { type QueueSettings, type QueueShard, queueShards } from './naming.js';

/** What a job carries: the verified event, when it arrived, and which receiver key matched. */
export interface EventJobData {
  /**
   * The event's turn at its resource (per-resource ordering) as `<created ms>:<resource key>`,
   * written as the first field of the job's data ({@link jobTurn}) so that the fast path's
   * finish can take the turn of the job it fetches without parsing the event. Only a hint: the
   * worker takes the turn itself when it is missing or names another turn than the event does.
   */
  turn?: string | undefined;
  event: Envelope;
  /** ISO-8601 time the ingest accepted the request. */
  receivedAt: string;
  /** Index of the receiver secret that verified the signature. */
  keyIndex: number;
  /**
   * Set on jobs made by `events replay`: the replay command's id. Such a job runs its event
   * again even though it is marked done, once per replay id (SPEC §6).
   */
  replay?: string;
  /**
   * The delivery's trace context (W3C `traceparent`, `tracestate`), when the ingest traces: the
   * worker's attempt spans are its children, and a redelivery's request span links to it.
   */
  trace?: Readonly<Record<string, string>>;
}

/**
 * The {@link EventJobData.turn} of a job of `event`: undefined when the event names no resource,
 * or its key is not plain JSON text (a quote, a backslash or a control character: the finish
 * reads the field with a pattern, not a JSON parser). Set it as the first property of the job's
 * data, always (undefined is left out of the JSON): one object shape for every job.
 */
export function jobTurn(event: Envelope): string | undefined {
  if (!isEventType(event.type)) return undefined;
  const key = resourceKeyOf(event.type, event.data as never);
  if (key === undefined || JSON.stringify(key) !== `"${key}"`) return undefined;
  const created = createdMillis(event.created);
  return `${created === undefined ? '' : created}:${key}`;
}

/**
 * The JSON of a job's data, as `JSON.stringify(data)` lays it out, but with the event written as
 * `eventJson`, the JSON text `data.event` was parsed from: the text as received, so that nothing
 * is serialised twice and the worker parses exactly what the sender signed.
 */
export function jobDataJson(data: EventJobData, eventJson: string): string {
  const turn = data.turn === undefined ? '' : `"turn":${JSON.stringify(data.turn)},`;
  const replay = data.replay === undefined ? '' : `,"replay":${JSON.stringify(data.replay)}`;
  const trace = data.trace === undefined ? '' : `,"trace":${JSON.stringify(data.trace)}`;
  return `{${turn}"event":${eventJson},"receivedAt":${JSON.stringify(data.receivedAt)},"keyIndex":${JSON.stringify(data.keyIndex)}${replay}${trace}}`;
}

/** A BullMQ queue typed for event jobs (job name = event type). */
export type EventQueue = Queue<EventJobData, void, string>;

/** Settings a queue handle needs. */
export type QueueHandleSettings = QueueSettings & JobConfig;

/** Opens a BullMQ `Queue` for one shard over an existing (shared) client. */
export function openQueue(client: RedisClient, shard: QueueShard, settings: JobConfig): EventQueue {
  return new Queue<EventJobData, void, string>(shard.name, {
    connection: client,
    prefix: shard.prefix,
    defaultJobOptions: jobOptions(settings),
    // The caller decides when Redis is ready; never park commands waiting for it.
    skipWaitingForReady: true,
  });
}

/** Opens one queue per shard. */
export function openQueues(client: RedisClient, settings: QueueHandleSettings): EventQueue[] {
  return queueShards(settings).map((shard) => openQueue(client, shard, settings));
}
