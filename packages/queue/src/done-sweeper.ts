import type { RedisClient } from './connection.js';
import { SWEEP } from './done-markers.js';
import { DONE_GROUP, doneGroupOfSlot } from './naming.js';

/** Buckets one sweep step visits: the bound on its work (docs/idempotency-memory.md). */
export const SWEEP_BUCKETS_PER_STEP = 64;
/** Merges one step may do while the markers shrink. */
const SWEEP_MERGES_PER_STEP = 4;
/** A group is stepped at most once in this long by the whole fleet (ms). */
const SWEEP_MIN_GAP_MS = 100;
/** Bounds of the time between one worker's steps (ms). */
const MIN_INTERVAL_MS = 250;
const MAX_INTERVAL_MS = 5000;
/** A single Redis's group is passed over about once in this long, by each worker (ms). */
const PASS_MS = 3_600_000;
/** On a Cluster, missing groups (no marker in that slot) one step may skip past. */
const EMPTY_GROUPS_PER_STEP = 32;
const CLUSTER_SLOTS = 16_384;

/** What one step did on one group. */
export interface SweepStep {
  readonly group: string;
  /** Another worker stepped this group a moment ago: nothing was done. */
  readonly skipped: boolean;
  readonly visited: number;
  readonly removed: number;
  readonly merges: number;
  /** Markers the group holds after the step. */
  readonly markers: number;
  /** Its buckets after the step. */
  readonly buckets: number;
  /** Where the group's next step starts: 0 once a pass over it is complete. */
  readonly cursor: number;
}

/** Options of {@link DoneSweeper}. */
export interface DoneSweeperOptions {
  /** A step that failed (Redis away, say): the next one tries again. */
  onError?: (error: unknown) => void;
  /** For tests: uniform in [0, 1). Default `Math.random`. */
  random?: () => number;
}

type SweepClient = RedisClient & {
  groqSweepMarkers(
    group: string,
    buckets: number,
    gapMs: number,
    merges: number,
  ): Promise<number[]>;
};

/**
 * Drops expired done-markers in bounded steps, driven by each worker: one step is one script
 * call over at most {@link SWEEP_BUCKETS_PER_STEP} buckets of one group (no KEYS, no SCAN, no
 * loop over a whole group). On a single Redis a worker steps the group every
 * 3 600 000 × 64 / buckets ms (between 250 ms and 5 s, jittered), so it passes over it about
 * hourly; the group's cursor is shared, and a step within 100 ms of another is skipped, so the
 * fleet's rate does not grow with its size. On a Cluster it walks the 16 384 slot groups one after
 * another from a random slot, every 250 ms. Expiry does not wait for the sweep (a marker past its
 * expiry is not done), and buckets that receive new markers drop their expired ones as they go:
 * the sweep bounds the memory held by markers nobody writes near.
 */
export class DoneSweeper {
  readonly #client: SweepClient;
  readonly #cluster: boolean;
  readonly #onError: (error: unknown) => void;
  readonly #random: () => number;
  #slot: number;
  /** The group's buckets at the last step that saw them (a single Redis). */
  #buckets = 1;
  #timer: NodeJS.Timeout | undefined;
  #stepping: Promise<unknown> | undefined;
  #stopped = false;

  constructor(client: RedisClient, options: DoneSweeperOptions = {}) {
    client.defineCommand('groqSweepMarkers', { numberOfKeys: 1, lua: SWEEP });
    this.#client = client as SweepClient;
    this.#cluster = client.isCluster;
    this.#onError = options.onError ?? (() => {});
    this.#random = options.random ?? Math.random;
    this.#slot = Math.floor(this.#random() * CLUSTER_SLOTS);
  }

  /** Starts stepping, the first step after a random part of the longest interval. */
  start(): void {
    if (this.#stopped || this.#timer !== undefined) return;
    this.#schedule(this.#random() * MAX_INTERVAL_MS);
  }

  /** Stops stepping; resolves once a step in flight has ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#stepping?.catch(() => {});
  }

  /**
   * One step: on a single Redis one call on its group; on a Cluster one call on the current slot's
   * group, past up to 32 missing groups. Resolves with what each call did.
   */
  async step(): Promise<SweepStep[]> {
    if (!this.#cluster) return [await this.#sweep(DONE_GROUP)];
    const steps: SweepStep[] = [];
    for (let i = 0; i < EMPTY_GROUPS_PER_STEP; i++) {
      const step = await this.#sweep(doneGroupOfSlot(this.#slot));
      steps.push(step);
      // A pass over this group is complete, it has no marker, or another worker is on it.
      if (step.cursor === 0 || step.skipped) this.#slot = (this.#slot + 1) % CLUSTER_SLOTS;
      if (step.buckets > 0 || step.skipped) break;
    }
    return steps;
  }

  async #sweep(group: string): Promise<SweepStep> {
    const reply = await this.#client.groqSweepMarkers(
      group,
      SWEEP_BUCKETS_PER_STEP,
      SWEEP_MIN_GAP_MS,
      SWEEP_MERGES_PER_STEP,
    );
    const [visited = 0, removed = 0, merges = 0, markers = 0, buckets = 0, cursor = 0] = reply;
    if (visited === -1) {
      const none = { visited: 0, removed: 0, merges: 0, markers: 0, buckets: 0, cursor: 0 };
      return { group, skipped: true, ...none };
    }
    return { group, skipped: false, visited, removed, merges, markers, buckets, cursor };
  }

  #schedule(delayMs: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const stepping = this.step().then(
        (steps) => this.#intervalAfter(steps),
        (error: unknown) => {
          this.#onError(error);
          return MAX_INTERVAL_MS;
        },
      );
      this.#stepping = stepping;
      void stepping.then((interval) => {
        this.#stepping = undefined;
        if (!this.#stopped) this.#schedule(interval * (0.8 + 0.4 * this.#random()));
      });
    }, delayMs);
    this.#timer.unref();
  }

  #intervalAfter(steps: readonly SweepStep[]): number {
    if (this.#cluster) return MIN_INTERVAL_MS;
    const step = steps[0];
    if (step !== undefined && !step.skipped) this.#buckets = Math.max(1, step.buckets);
    return Math.min(
      MAX_INTERVAL_MS,
      Math.max(MIN_INTERVAL_MS, (PASS_MS * SWEEP_BUCKETS_PER_STEP) / this.#buckets),
    );
  }
}
