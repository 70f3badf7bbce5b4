import {
  decodeHistoryRecord,
  historyStreamKey,
  MalformedHistoryRecord,
  type QueueSettings,
  queueShards,
  type RedisClient,
} from '@groq-webhooks/queue';
import type { Logger } from '@groq-webhooks/telemetry';
import { sleep } from './sleep.js';
import type { HistoryStore, StreamEntry } from './store.js';

/** The consumer group every archiver shares, on every shard's history stream. */
export const ARCHIVER_GROUP = 'groq-archiver';

/** Dependencies of {@link Archiver}. */
export interface ArchiverDeps {
  /**
   * A `worker`-role client of its own: reads block on it for up to `blockMs`. Not closed by the
   * archiver.
   */
  client: RedisClient;
  store: HistoryStore;
  settings: QueueSettings;
  logger: Logger;
  /** This process's consumer name in the group, unique per process (e.g. host and pid). */
  consumer: string;
  /** Entries read per stream and batch. Default 1000. */
  batchSize?: number;
  /**
   * After a batch smaller than `batchSize` (the archiver caught up), how long to let records
   * gather before reading again: a batch's fixed costs (the transaction, the statement, the
   * round trips) are then shared by many records. Default 500 ms.
   */
  lingerMs?: number;
  /** How long a read waits for new entries (single shard: blocking read). Default 1000 ms. */
  blockMs?: number;
  /**
   * Entries another consumer read but did not archive for this long are taken over (its
   * process died, or its database writes keep failing). Default 60 s.
   */
  claimIdleMs?: number;
  /** When archiving gives way to handling; default {@link DEFAULT_DEFERRAL}. `false`: never. */
  deferral?: ArchiveDeferral | false;
  /** First wait after a failure, doubled up to `maxBackoffMs`. Default 250 ms. */
  backoffMs?: number;
  /** Default 30 s. */
  maxBackoffMs?: number;
}

/**
 * Handling first: while the queue has a backlog (the workers are behind), the archiver waits, so
 * that its reads, its writes and PostgreSQL's work do not take CPU and Redis time from handling
 * the backlog; it archives what gathered once the backlog is gone. So that the history never
 * falls far behind, nor the streams grow without bound, it waits at most while the oldest record
 * waiting is younger than `maxLagMs` and its stream holds fewer than `maxEntries`.
 */
export interface ArchiveDeferral {
  /** Waiting jobs (all shards) from which the queue counts as behind. */
  backlogJobs: number;
  maxLagMs: number;
  maxEntries: number;
  /** How often a waiting archiver looks again. */
  checkMs: number;
}

/** Behind: 100 jobs waiting (workers that keep up leave next to none). Waits up to 30 s of records, 50,000 per stream. */
export const DEFAULT_DEFERRAL: ArchiveDeferral = {
  backlogJobs: 100,
  maxLagMs: 30_000,
  maxEntries: 50_000,
  checkMs: 250,
};

/** Counters of one archiver since it started. */
export interface ArchiverStats {
  /** Records written to PostgreSQL (and removed from their streams). */
  archived: number;
  /** Stream entries that were not history records: dropped, counted here. */
  malformed: number;
  /** Times it began to let a queue backlog be handled first (see {@link ArchiveDeferral}). */
  deferrals: number;
  /** Batches that could not be written (PostgreSQL or Redis unavailable); retried. */
  failures: number;
}

/** What the streams still hold. */
export interface HistoryBacklog {
  /** Entries in the streams: not archived yet (including those being archived). */
  entries: number;
  /** Of which read by an archiver and not yet acknowledged. */
  pending: number;
}

interface Batch {
  entries: StreamEntry[];
  /** Every entry id read, per stream, records and malformed alike: acknowledged together. */
  ids: Map<string, string[]>;
  malformed: number;
}

/**
 * Drains the history streams into PostgreSQL: reads batches through a consumer group shared by
 * every worker process, writes each batch in one transaction (idempotent), then acknowledges and
 * deletes its entries. While PostgreSQL is slow or down the entries stay in Redis and the batch
 * is retried with backoff; nothing here is on the event-handling path.
 */
export class Archiver {
  readonly #deps: ArchiverDeps;
  readonly #streams: string[];
  /** Per shard: its history stream and its queue's wait list (one hash tag: one node). */
  readonly #shards: { stream: string; wait: string }[];
  readonly #deferral: ArchiveDeferral | undefined;
  readonly #batchSize: number;
  readonly #blockMs: number;
  readonly #claimIdleMs: number;
  readonly #lingerMs: number;
  readonly #stop = new AbortController();
  readonly #stats: ArchiverStats = { archived: 0, malformed: 0, failures: 0, deferrals: 0 };
  #loop: Promise<void> | undefined;
  #lastClaim = 0;
  #deferring = false;
  #lastFailureLog = 0;

  constructor(deps: ArchiverDeps) {
    this.#deps = deps;
    this.#shards = queueShards(deps.settings).map((shard) => ({
      stream: historyStreamKey(shard),
      wait: `${shard.prefix}:${shard.name}:wait`,
    }));
    this.#streams = this.#shards.map((shard) => shard.stream);
    this.#deferral = deps.deferral === false ? undefined : (deps.deferral ?? DEFAULT_DEFERRAL);
    this.#batchSize = deps.batchSize ?? 1000;
    this.#lingerMs = deps.lingerMs ?? 500;
    this.#blockMs = deps.blockMs ?? 1000;
    this.#claimIdleMs = deps.claimIdleMs ?? 60_000;
  }

  /** Counters since start. */
  get stats(): Readonly<ArchiverStats> {
    return this.#stats;
  }

  /** Starts the loop (once). */
  start(): void {
    this.#loop ??= this.#run();
  }

  /** Stops after the batch in hand (a blocked read ends within `blockMs`). */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
  }

  /** Stream entries not archived yet, over every shard. */
  async backlog(): Promise<HistoryBacklog> {
    const client = this.#deps.client;
    let entries = 0;
    let pending = 0;
    for (const stream of this.#streams) {
      entries += await client.xlen(stream);
      const summary = (await client
        .call('XPENDING', stream, ARCHIVER_GROUP)
        .catch(() => [0])) as unknown[];
      pending += Number(summary[0] ?? 0);
    }
    return { entries, pending };
  }

  async #run(): Promise<void> {
    let backoff = this.#deps.backoffMs ?? 250;
    let groupsReady = false;
    let held: Batch | undefined;
    let written = false;
    while (!this.#stop.signal.aborted) {
      try {
        if (!groupsReady) {
          await this.#createGroups();
          groupsReady = true;
        }
        if (held === undefined) {
          if (await this.#handlingFirst()) {
            await sleep(this.#deferral?.checkMs ?? 0, this.#stop.signal);
            continue;
          }
          held = await this.#read();
          written = false;
          if (held === undefined) continue;
        }
        if (!written) {
          if (held.entries.length > 0) await this.#deps.store.writeBatch(held.entries);
          written = true;
          this.#stats.archived += held.entries.length;
          this.#stats.malformed += held.malformed;
        }
        await this.#acknowledge(held);
        const full = held.entries.length + held.malformed >= this.#batchSize;
        held = undefined;
        backoff = this.#deps.backoffMs ?? 250;
        if (!full && this.#lingerMs > 0) await sleep(this.#lingerMs, this.#stop.signal);
      } catch (error) {
        if (isNoGroup(error)) groupsReady = false;
        this.#stats.failures += 1;
        this.#logFailure(error, held);
        await sleep(backoff, this.#stop.signal);
        backoff = Math.min(backoff * 2, this.#deps.maxBackoffMs ?? 30_000);
      }
    }
  }

  /** True while the queue's backlog goes first ({@link ArchiveDeferral}). */
  async #handlingFirst(): Promise<boolean> {
    const deferral = this.#deferral;
    if (deferral === undefined) return false;
    let waiting = 0;
    for (const shard of this.#shards) {
      const replies = (await this.#deps.client
        .pipeline()
        .llen(shard.wait)
        .xlen(shard.stream)
        .xrange(shard.stream, '-', '+', 'COUNT', 1)
        .exec()) as [Error | null, unknown][] | null;
      const [wait, length, oldest] = (replies ?? []).map(([error, value]) => {
        if (error) throw error;
        return value;
      });
      const first = (oldest as [string, unknown][] | undefined)?.[0]?.[0];
      const lag = first === undefined ? 0 : Date.now() - Number(first.split('-')[0]);
      if (Number(length) >= deferral.maxEntries || lag >= deferral.maxLagMs) {
        this.#deferring = false;
        return false;
      }
      waiting += Number(wait);
    }
    const behind = waiting >= deferral.backlogJobs;
    if (behind && !this.#deferring) this.#stats.deferrals += 1;
    this.#deferring = behind;
    return behind;
  }

  async #createGroups(): Promise<void> {
    for (const stream of this.#streams) {
      try {
        // From the start: whatever was appended before the first archiver ran is archived too.
        await this.#deps.client.call('XGROUP', 'CREATE', stream, ARCHIVER_GROUP, '0', 'MKSTREAM');
      } catch (error) {
        if (!String((error as Error).message).includes('BUSYGROUP')) throw error;
      }
    }
  }

  /** The next batch: entries left pending too long by anyone (now and then), else new ones. */
  async #read(): Promise<Batch | undefined> {
    const batch: Batch = { entries: [], ids: new Map(), malformed: 0 };
    if (Date.now() - this.#lastClaim >= Math.min(this.#claimIdleMs / 2, 10_000)) {
      this.#lastClaim = Date.now();
      for (const stream of this.#streams) {
        const reply = (await this.#deps.client.call(
          'XAUTOCLAIM',
          stream,
          ARCHIVER_GROUP,
          this.#deps.consumer,
          String(this.#claimIdleMs),
          '0-0',
          'COUNT',
          String(this.#batchSize),
        )) as [string, RawEntry[]] | null;
        this.#collect(batch, stream, reply?.[1] ?? []);
      }
      if (batch.ids.size > 0) return batch;
    }
    const single = this.#streams.length === 1;
    for (const stream of this.#streams) {
      if (this.#stop.signal.aborted) return undefined;
      const args = ['GROUP', ARCHIVER_GROUP, this.#deps.consumer, 'COUNT', String(this.#batchSize)];
      if (single) args.push('BLOCK', String(this.#blockMs));
      const reply = await this.#deps.client.call('XREADGROUP', ...args, 'STREAMS', stream, '>');
      this.#collect(batch, stream, streamEntries(reply));
    }
    if (batch.ids.size > 0) return batch;
    // Several shards are read without blocking (they may live on different Cluster nodes).
    if (!single) await sleep(Math.min(this.#blockMs, 250), this.#stop.signal);
    return undefined;
  }

  #collect(batch: Batch, stream: string, raw: readonly RawEntry[]): void {
    for (const entry of raw) {
      if (!Array.isArray(entry) || typeof entry[0] !== 'string') continue;
      const [entryId, fields] = entry;
      let ids = batch.ids.get(stream);
      if (ids === undefined) {
        ids = [];
        batch.ids.set(stream, ids);
      }
      ids.push(entryId);
      // A claimed entry deleted meanwhile comes back without fields: acknowledge it, nothing more.
      if (!Array.isArray(fields)) continue;
      const record = decodeHistoryRecord(fields.map(String));
      if (record instanceof MalformedHistoryRecord) {
        batch.malformed += 1;
        this.#deps.logger.warn(
          { stream, entryId, reason: record.message },
          'Dropping a history stream entry that is not a history record',
        );
        continue;
      }
      batch.entries.push({ stream, entryId, record });
    }
  }

  async #acknowledge(batch: Batch): Promise<void> {
    for (const [stream, ids] of batch.ids) {
      const pipeline = this.#deps.client.pipeline();
      pipeline.xack(stream, ARCHIVER_GROUP, ...ids);
      pipeline.xdel(stream, ...ids);
      const replies = (await pipeline.exec()) ?? [];
      const failed = replies.find(([error]) => error !== null);
      if (failed?.[0]) throw failed[0];
    }
  }

  #logFailure(error: unknown, held: Batch | undefined): void {
    // During an outage every retry fails; one line per 10 s says it.
    if (Date.now() - this.#lastFailureLog < 10_000) return;
    this.#lastFailureLog = Date.now();
    this.#deps.logger.warn(
      {
        err: { message: error instanceof Error ? error.message : String(error) },
        held: held?.entries.length ?? 0,
      },
      'History archiving failed; records stay in Redis and will be retried',
    );
  }
}

type RawEntry = [string, unknown[] | null];

/**
 * The entries of a one-stream XREADGROUP reply: `[[key, entries]]` over RESP2, `[key, entries]`
 * when the client maps RESP3's map reply to a flat array; null when nothing was read.
 */
function streamEntries(reply: unknown): RawEntry[] {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  const pair: unknown = typeof reply[0] === 'string' ? reply : reply[0];
  return Array.isArray(pair) && Array.isArray(pair[1]) ? (pair[1] as RawEntry[]) : [];
}

function isNoGroup(error: unknown): boolean {
  return error instanceof Error && error.message.includes('NOGROUP');
}
