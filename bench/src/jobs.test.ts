import { describe, expect, it } from 'vitest';
import { benchJob, benchTraceCarrier } from './jobs.js';

const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/;

describe('benchJob', () => {
  it('carries no trace context unless asked', () => {
    expect(benchJob('evt_1', 1, 'x').data.trace).toBeUndefined();
  });

  it("carries a tracing ingest's traceparent, sampled for the given share of the jobs", () => {
    const carriers = Array.from({ length: 1000 }, (_, index) =>
      benchJob('e', index, 'x', 10, 0.01),
    );
    const parents = carriers.map((job) => job.data.trace?.traceparent ?? '');
    expect(parents.every((parent) => TRACEPARENT.test(parent))).toBe(true);
    expect(parents.filter((parent) => parent.endsWith('-01'))).toHaveLength(10);
    // Every delivery is a trace of its own.
    expect(new Set(parents.map((parent) => parent.slice(3, 35))).size).toBe(1000);
  });

  it('samples all or none at the ends', () => {
    expect(benchTraceCarrier(7, 1).traceparent.endsWith('-01')).toBe(true);
    expect(benchTraceCarrier(0, 0).traceparent.endsWith('-00')).toBe(true);
  });
});
