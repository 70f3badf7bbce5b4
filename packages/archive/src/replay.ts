import { randomBytes } from 'node:crypto';
import type { Envelope } from '@groq-webhooks/core';
import {
  type EventJobData,
  type EventQueue,
  type HistoryWriter,
  jobTurn,
  replayJobIdFor,
  shardOf,
} from '@groq-webhooks/queue';
import { type EventFilters, filtersJson } from './filters.js';
import type { HistoryStore, ReplayCandidate, ReplayCursor } from './store.js';

/** Jobs per `addBulk` call: one Redis round trip each, small enough to keep Redis responsive. */
export const REPLAY_CHUNK = 1000;

/** A new replay id: time-ordered, unique, and free of the `-` and `:` job ids reserve. */
export function newReplayId(now = Date.now()): string {
  return `rpl_${now.toString(36)}${randomBytes(5).toString('hex')}`;
}

/** Dependencies of {@link replayEvents}. */
export interface ReplayDeps {
  store: HistoryStore;
  /** The queue of every shard, in shard order (e.g. `FailedEvents.queues`). */
  queues: readonly EventQueue[];
  /** Writes the `replay` history record. */
  writer: HistoryWriter;
  /** Clock, injectable for tests. */
  now?: () => number;
}

/** What to replay. */
export interface ReplayOptions {
  filters: EventFilters;
  /** At most this many events (oldest first). Default: all that match. */
  limit?: number;
  /** Default: {@link newReplayId}. */
  replayId?: string;
  /** Called after every chunk with the events enqueued so far and the total expected. */
  onProgress?: (done: number, total: number) => void;
}

/** Result of {@link replayEvents}. */
export interface ReplayResult {
  replayId: string;
  /** Events matching the filters (capped by `limit`) when the replay started. */
  matched: number;
  /** Events enqueued as new replay jobs. */
  enqueued: number;
  /** Matching events archived without a payload (nothing to re-run). */
  skipped: number;
  durationMs: number;
}

/**
 * Re-runs archived events on purpose: every event matching the filters, oldest first, becomes a
 * new job whose id is scoped by a new replay id ({@link replayJobIdFor}) and whose data carries
 * that id (`EventJobData.replay`), through BullMQ's `addBulk` in chunks. A `replay` history
 * record names the command. Calling it twice makes two replays; within one replay an event gets
 * one job.
 */
export async function replayEvents(
  deps: ReplayDeps,
  options: ReplayOptions,
): Promise<ReplayResult> {
  const now = deps.now ?? Date.now;
  const started = now();
  const replayId = options.replayId ?? newReplayId(started);
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const total = Math.min(limit, await deps.store.count(options.filters));
  let enqueued = 0;
  let seen = 0;
  let cursor: ReplayCursor | undefined;
  options.onProgress?.(0, total);
  while (seen < limit) {
    const page = await deps.store.replayPage(
      options.filters,
      cursor,
      Math.min(REPLAY_CHUNK * 5, limit - seen),
    );
    if (page.length === 0) break;
    seen += page.length;
    const last = page.at(-1) as ReplayCandidate;
    cursor = { receivedAt: last.receivedAt, eventId: last.eventId };
    for (let i = 0; i < page.length; i += REPLAY_CHUNK) {
      enqueued += await enqueueChunk(deps.queues, replayId, page.slice(i, i + REPLAY_CHUNK));
      options.onProgress?.(enqueued, total);
    }
  }
  await deps.writer.append([
    {
      kind: 'replay',
      replayId,
      filters: JSON.stringify({ ...filtersJson(options.filters), ...limitJson(options.limit) }),
      count: enqueued,
      requestedAt: started,
    },
  ]);
  return {
    replayId,
    matched: total,
    enqueued,
    skipped: Math.max(0, Math.min(total, seen) - enqueued),
    durationMs: now() - started,
  };
}

function limitJson(limit: number | undefined): Record<string, number> {
  return limit === undefined ? {} : { limit };
}

/** Adds one chunk's jobs, one `addBulk` per shard. Returns how many events it enqueued. */
async function enqueueChunk(
  queues: readonly EventQueue[],
  replayId: string,
  candidates: readonly ReplayCandidate[],
): Promise<number> {
  const byShard = new Map<number, Parameters<EventQueue['addBulk']>[0]>();
  let count = 0;
  for (const candidate of candidates) {
    const event = parsePayload(candidate.payload);
    if (event === undefined) continue;
    const data: EventJobData = {
      turn: jobTurn(event),
      event,
      receivedAt: candidate.receivedAt.toISOString(),
      keyIndex: candidate.keyIndex,
      replay: replayId,
    };
    const shard = shardOf(candidate.eventId, queues.length);
    let jobs = byShard.get(shard);
    if (jobs === undefined) {
      jobs = [];
      byShard.set(shard, jobs);
    }
    jobs.push({
      name: candidate.type,
      data,
      opts: { jobId: replayJobIdFor(replayId, candidate.eventId) },
    });
    count += 1;
  }
  await Promise.all(
    [...byShard].map(([shard, jobs]) => {
      const queue = queues[shard];
      if (queue === undefined) throw new Error(`no queue shard ${shard}`);
      return queue.addBulk(jobs);
    }),
  );
  return count;
}

function parsePayload(text: string): Envelope | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Envelope)
      : undefined;
  } catch {
    return undefined;
  }
}
