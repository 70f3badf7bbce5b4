import type { EventDetail, QueueStats } from '@groq-webhooks/queue';
import { describe, expect, it } from 'vitest';
import { renderDetail, renderList, renderStats } from './admin.js';

const counts = {
  waiting: 3,
  active: 1,
  delayed: 0,
  prioritized: 0,
  'waiting-children': 0,
  completed: 120,
  failed: 2,
};

describe('human output', () => {
  it('stats: counts aligned, oldest waiting age, paused shards and a per-shard table', () => {
    const stats: QueueStats = {
      counts,
      oldestWaitingSeconds: 305,
      waitingOnResource: 4,
      pausedShards: [1],
      shards: [
        { index: 0, name: 'groq-events-0', counts: { ...counts, waiting: 1 }, paused: false },
        { index: 1, name: 'groq-events-1', counts: { ...counts, waiting: 2 }, paused: true },
      ],
    };
    const text = renderStats(stats);
    expect(text).toMatch(/^completed\s+120$/m);
    expect(text).toMatch(/^oldest waiting\s+5m 5s$/m);
    expect(text).toMatch(/^waiting on a busy resource\s+4$/m);
    expect(text).toContain('paused: groq-events-1 (waiting jobs are not taken until resumed)');
    expect(text).toMatch(/^\s+groq-events-1\s+2\s/m);
  });

  it('list: says when there is nothing, and how many are not shown', () => {
    expect(renderList({ total: 0, events: [] }, 120)).toBe('no failed events');
    const event = {
      eventId: 'evt_1',
      jobId: 'evt-evt_1',
      shard: 0,
      type: 'resource.created',
      attempts: 8,
      lastError: `timeout ${'x'.repeat(300)}`,
      failedAt: '2026-11-28T10:00:00.000Z',
    };
    const text = renderList({ total: 9, events: [event] }, 100);
    expect(text).toContain('1 of 9 failed events');
    // The error column is cut to the terminal width.
    for (const line of text.split('\n')) expect(line.length).toBeLessThanOrEqual(100);
  });

  it('show: facts, payload, then each attempt with its stack', () => {
    const detail: EventDetail = {
      eventId: 'evt_1',
      jobId: 'evt-evt_1',
      shard: 0,
      type: 'resource.created',
      attempts: 2,
      lastError: 'boom 2',
      failedAt: '2026-11-28T10:00:02.000Z',
      state: 'failed',
      payload: { id: 'evt_1', type: 'resource.created', data: { id: 'r' }, created: 'c' },
      receivedAt: '2026-11-28T10:00:00.000Z',
      attemptsStarted: 2,
      maxAttempts: 8,
      createdAt: '2026-11-28T10:00:00.000Z',
      processedAt: '2026-11-28T10:00:01.000Z',
      failures: [
        { attempt: 1, error: 'Error: boom 1', stack: 'Error: boom 1\n    at handler (h.mjs:1:1)' },
        { attempt: 2, error: 'Error: boom 2', stack: 'Error: boom 2\n    at handler (h.mjs:2:2)' },
      ],
    };
    const text = renderDetail(detail);
    expect(text).toMatch(/^attempts\s+2 of 8$/m);
    expect(text).toContain('"id": "r"');
    expect(text).toMatch(/ {2}attempt 1: Error: boom 1\n {6}at handler \(h\.mjs:1:1\)/);
    expect(text).toMatch(/ {2}attempt 2: Error: boom 2\n {6}at handler \(h\.mjs:2:2\)/);
  });

  it('show: a payload too deep to show is named as such, the rest is shown', () => {
    const detail: EventDetail = {
      eventId: 'evt_deep',
      jobId: 'evt-evt_deep',
      shard: 0,
      type: 'resource.created',
      attempts: 1,
      lastError: 'boom',
      failedAt: '2026-11-28T10:00:02.000Z',
      state: 'failed',
      payload: null,
      payloadProblem: 'payload nested more than 1000 levels deep: too deep to show',
      receivedAt: '2026-11-28T10:00:00.000Z',
      attemptsStarted: 1,
      maxAttempts: 8,
      createdAt: '2026-11-28T10:00:00.000Z',
      processedAt: '2026-11-28T10:00:01.000Z',
      failures: [{ attempt: 1, error: 'Error: boom', stack: 'Error: boom\n    at h (h.mjs:1:1)' }],
    };
    const text = renderDetail(detail);
    expect(text).toMatch(/^created\s+-$/m);
    expect(text).toContain(
      'payload:\n  (cannot be shown: payload nested more than 1000 levels deep: too deep to show)',
    );
    expect(text).toContain('attempt 1: Error: boom');
  });
});
