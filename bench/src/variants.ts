/**
 * One configuration of the real ingest and worker that `pnpm bench` measures against the same
 * round's baseline, side by side with the others: what a hot-path feature costs is the ratio of
 * its variant to the default one (`fast`) in the same rounds.
 */
export interface Variant {
  /** Short name, as in `--variants`. */
  readonly name: string;
  /** What it measures, for the report. */
  readonly description: string;
  /** Environment of the ingest and worker processes (over the bench's own). */
  readonly env: Readonly<Record<string, string>>;
  /** Which side it changes: the other side is not measured again for it. */
  readonly sides: readonly ('ingest' | 'worker')[];
  /** A PostgreSQL the bench starts, its URL passed as `ARCHIVE_DATABASE_URL` (the history). */
  readonly needsPostgres?: boolean;
  /** Other builds of the ingest and worker to run (another checkout's `dist/main.js`). */
  readonly entries?: { readonly ingest: string; readonly worker: string };
  /**
   * It exports traces: the bench starts a sink that accepts and drops them (`trace-sink.ts`)
   * and points the variant's `OTEL_EXPORTER_OTLP_ENDPOINT` at it.
   */
  readonly traceSink?: true;
  /**
   * The worker's queued jobs carry a trace context, as the ingest with the same sampler writes
   * it: this share of them sampled (`-01`), the rest not (`-00`). Without it jobs carry none.
   */
  readonly jobTracesSampled?: number;
}

import { basename, join } from 'node:path';
import { ENTRY } from './processes.js';

const UNORDERED_HANDLERS = ENTRY.unorderedHandlers;

/** The default configuration: what a deployment runs with nothing set. */
export const DEFAULT_VARIANT = 'fast';

/** Every variant, in report order. */
export const VARIANTS: readonly Variant[] = [
  {
    name: 'fast',
    description: 'the default: the queue fast path (QUEUE_FAST_PATH=on)',
    env: { QUEUE_FAST_PATH: 'on' },
    sides: ['ingest', 'worker'],
  },
  {
    name: 'stock',
    description: "BullMQ's stock path (QUEUE_FAST_PATH=off)",
    env: { QUEUE_FAST_PATH: 'off' },
    sides: ['ingest', 'worker'],
  },
  {
    name: 'history',
    description:
      'the event history on (ARCHIVE_DATABASE_URL: a PostgreSQL the bench starts; the workers archive into it)',
    env: {},
    sides: ['ingest', 'worker'],
    needsPostgres: true,
  },
  {
    name: 'unordered',
    description:
      "per-resource ordering off (handlers defined with ordering: 'none'); the default orders events about each of 1,000 resources",
    env: { HANDLERS_MODULE: UNORDERED_HANDLERS },
    sides: ['worker'],
  },
  {
    name: 'trace100',
    description:
      'tracing on, every trace sampled (OTEL_TRACES_SAMPLER=parentbased_always_on), exported over OTLP/HTTP to a local sink',
    env: { QUEUE_FAST_PATH: 'on', OTEL_TRACES_SAMPLER: 'parentbased_always_on' },
    sides: ['ingest', 'worker'],
    traceSink: true,
    jobTracesSampled: 1,
  },
  {
    name: 'trace1',
    description:
      'tracing on, 1 % of traces sampled (OTEL_TRACES_SAMPLER=parentbased_traceidratio, OTEL_TRACES_SAMPLER_ARG=0.01), exported to a local sink',
    env: {
      QUEUE_FAST_PATH: 'on',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.01',
    },
    sides: ['ingest', 'worker'],
    traceSink: true,
    jobTracesSampled: 0.01,
  },
];

/**
 * The same ingest and worker built from other checkouts (`--compare-with <dir>[,<dir>…]`, e.g.
 * the previous main), with ordering off as they had none: a refactor's cost, side by side. One
 * checkout is variant `previous`; several are `previous-<folder name>`.
 */
export function previousVariants(checkouts: string): Variant[] {
  const dirs = checkouts
    .split(',')
    .map((dir) => dir.trim())
    .filter((dir) => dir !== '');
  return dirs.map((checkout) => ({
    name: dirs.length === 1 ? 'previous' : `previous-${basename(checkout)}`,
    description: `the ingest and worker of ${checkout} (its defaults; the worker without per-resource ordering)`,
    env: { HANDLERS_MODULE: UNORDERED_HANDLERS },
    sides: ['ingest', 'worker'],
    entries: {
      ingest: join(checkout, 'apps/ingest/dist/main.js'),
      worker: join(checkout, 'apps/worker/dist/main.js'),
    },
  }));
}

/** The variants `--variants a,b` names (default: all), the default one always first. */
export function chooseVariants(names: string | undefined): Variant[] {
  if (names === undefined) return [...VARIANTS];
  const wanted = new Set(names.split(',').map((name) => name.trim()));
  wanted.add(DEFAULT_VARIANT);
  for (const name of wanted) {
    if (!VARIANTS.some((variant) => variant.name === name)) {
      throw new Error(
        `unknown variant ${name}: one of ${VARIANTS.map((variant) => variant.name).join(', ')}`,
      );
    }
  }
  return VARIANTS.filter((variant) => wanted.has(variant.name));
}

/**
 * `runs` from its `by`-th on, then the ones before it: each round starts with another variant,
 * so that no variant always runs last (a machine that slows down within a round, as a shared
 * one does, would then charge it alone).
 */
export function rotated<T>(runs: readonly T[], by: number): T[] {
  if (runs.length === 0) return [];
  const start = by % runs.length;
  return [...runs.slice(start), ...runs.slice(0, start)];
}
