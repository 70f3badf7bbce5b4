import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

// Not a timed test: it proves `pnpm bench` runs end to end and checks what it measured, on a
// few seconds of load. The figures themselves come from full runs (README, Performance).
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'groq-bench-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

interface Report {
  load: { kind: string; requests: number; ackedWithoutJob?: number }[];
  workers: { kind: string; jobsPerSecond: number; failed: number }[];
}

describe('pnpm bench --quick', () => {
  it('measures the baseline and the ingest, and every 200 it got has its job in Redis', async () => {
    const result = await new Promise<{ code: number; stdout: string; stderr: string }>(
      (resolve) => {
        execFile(
          process.execPath,
          // Every variant but `trace100`: its tracing twin `trace1` runs the same code and
          // sink, at another sampler (and `previous`, which needs --compare-with).
          [MAIN, '--quick', '--variants', 'stock,unordered,history,trace1', '--out', out],
          { timeout: 150_000 },
          (error, stdout, stderr) =>
            resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
        );
      },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('Ratio ingest (fast) / baseline');
    expect(result.stdout).toContain('Ratio ingest (stock) / baseline');
    expect(result.stdout).toMatch(/- ingest `stock`: [0-9.]+× the `fast` ingest's req\/s/);
    expect(result.stdout).toMatch(/- worker `stock` c=10: [0-9.]+× the `fast` worker's jobs\/s/);
    expect(result.stdout).toMatch(/- ingest `trace1`: [0-9.]+× the `fast` ingest's req\/s/);
    expect(result.stdout).toMatch(/- worker `trace1` c=10: [0-9.]+× the `fast` worker's jobs\/s/);
    // --quick measures the worker at concurrency 10 only: the ingest's target line alone.
    expect(result.stdout).toMatch(
      /## Targets \(median round, default variant\)\n\n- Ingest ≥ 0\.50× baseline/,
    );
    const json = readdirSync(out).find((file) => file.endsWith('.json'));
    expect(json).toBeDefined();
    const report = JSON.parse(readFileSync(join(out, json ?? ''), 'utf8')) as Report;
    const ingest = report.load.filter((row) => row.kind !== 'baseline');
    expect(report.load.some((row) => row.kind === 'baseline' && row.requests > 0)).toBe(true);
    expect(ingest.length).toBeGreaterThan(0);
    for (const row of ingest) {
      expect(row.requests).toBeGreaterThan(0);
      expect(row.ackedWithoutJob).toBe(0);
    }
    expect(ingest.map((row) => row.kind).sort()).toEqual(['fast', 'history', 'stock', 'trace1']);
    expect(report.workers.map((row) => row.kind).sort()).toEqual([
      'bare',
      'fast',
      'history',
      'stock',
      'trace1',
      'unordered',
    ]);
    // The worst case of per-resource ordering ran, one event at a time.
    expect(result.stdout).toMatch(/at most 1 handler\(s\) running at once; 0 failed/);
    for (const row of report.workers) {
      expect(row.jobsPerSecond).toBeGreaterThan(0);
      expect(row.failed).toBe(0);
    }
  }, 180_000);
});

describe('pnpm bench --quick --paired', () => {
  it('runs the default ingest and worker beside themselves, at the same time, as the control', async () => {
    const pairedOut = mkdtempSync(join(tmpdir(), 'groq-bench-paired-'));
    try {
      const result = await new Promise<{ code: number; stdout: string; stderr: string }>(
        (resolve) => {
          execFile(
            process.execPath,
            [
              MAIN,
              '--quick',
              '--paired',
              // The control pairs alone (fast beside fast): the mechanics of both sides, at half
              // the CPU of a variant's pairs too, which a full run's figures are for.
              '--variants',
              'fast',
              '--one-resource',
              '0',
              '--out',
              pairedOut,
            ],
            { timeout: 150_000 },
            (error, stdout, stderr) =>
              resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
          );
        },
      );
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/- control, `fast` beside itself: [0-9.]+× \(geometric mean/);
      expect(result.stdout).toMatch(
        /- control, `fast` beside itself, c=10: [0-9.]+× \(geometric mean/,
      );
      const json = readdirSync(pairedOut).find((file) => file.endsWith('.json'));
      const report = JSON.parse(readFileSync(join(pairedOut, json ?? ''), 'utf8')) as {
        load: unknown[];
        workers: unknown[];
        pairedWorkers: {
          variant: string;
          referenceJobsPerSecond: number;
          otherJobsPerSecond: number;
          failed: number;
        }[];
        paired: {
          variant: string;
          reference: { kind: string; requests: number; ackedWithoutJob?: number };
          other: { kind: string; requests: number; ackedWithoutJob?: number };
        }[];
      };
      // Not one after another: only the pairs ran.
      expect(report.load).toEqual([]);
      expect(report.workers).toEqual([]);
      expect(report.pairedWorkers.map((pair) => pair.variant)).toEqual(['fast']);
      for (const pair of report.pairedWorkers) {
        expect(pair.referenceJobsPerSecond).toBeGreaterThan(0);
        expect(pair.otherJobsPerSecond).toBeGreaterThan(0);
        expect(pair.failed).toBe(0);
      }
      expect(report.paired.map((pair) => pair.variant)).toEqual(['fast']);
      for (const pair of report.paired) {
        expect(pair.reference.kind).toBe('fast');
        expect(pair.other.kind).toBe(pair.variant);
        for (const side of [pair.reference, pair.other]) {
          expect(side.requests).toBeGreaterThan(0);
          expect(side.ackedWithoutJob).toBe(0);
        }
      }
    } finally {
      rmSync(pairedOut, { recursive: true, force: true });
    }
  }, 180_000);
});

describe('pnpm bench --memory --quick', () => {
  it('measures Redis memory per handled event, with every event handled and marked', async () => {
    const memoryOut = mkdtempSync(join(tmpdir(), 'groq-bench-memory-'));
    try {
      const result = await new Promise<{ code: number; stdout: string; stderr: string }>(
        (resolve) => {
          execFile(
            process.execPath,
            [MAIN, '--memory', '--quick', '--out', memoryOut],
            { timeout: 150_000 },
            (error, stdout, stderr) =>
              resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
          );
        },
      );
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain('marginal bytes per event');
      const json = readdirSync(memoryOut).find((file) => file.endsWith('.json'));
      const report = JSON.parse(readFileSync(join(memoryOut, json ?? ''), 'utf8')) as {
        runs: {
          layout: string;
          marginalBytesPerEvent: number;
          non2xx: number;
          checkpoints: { events: number; markers: number; completedJobs: number }[];
        }[];
      };
      expect(report.runs.length).toBeGreaterThan(0);
      for (const run of report.runs) {
        expect(run.non2xx).toBe(0);
        expect(run.checkpoints.map((c) => c.markers)).toEqual(run.checkpoints.map((c) => c.events));
        // Completed jobs are trimmed to the same count at every size: only markers grow.
        expect(new Set(run.checkpoints.map((c) => c.completedJobs)).size).toBe(1);
        expect(run.marginalBytesPerEvent).toBeGreaterThan(0);
        expect(run.marginalBytesPerEvent).toBeLessThan(400);
      }
      // Both layouts side by side; the compact one within the bound (≤ 64 bytes an
      // event; ~24 measured at full size) and a fraction of one key per event.
      const [oneKey, compact] = report.runs.map((run) => run.marginalBytesPerEvent);
      expect(report.runs.map((run) => run.layout)).toEqual([
        'one key per event (previous layout)',
        'compact: sorted-set buckets (default)',
      ]);
      expect(compact).toBeLessThan(64);
      expect(compact).toBeLessThan((oneKey ?? 0) / 3);
    } finally {
      rmSync(memoryOut, { recursive: true, force: true });
    }
  }, 180_000);
});
