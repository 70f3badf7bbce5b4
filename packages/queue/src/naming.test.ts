import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffDelay, MAX_BACKOFF_MS } from './job-options.js';
import {
  clusterSlot,
  eventIdFromJobId,
  idempotencyKey,
  jobIdFor,
  queueShards,
  shardOf,
} from './naming.js';

describe('jobIdFor', () => {
  it('never contains a colon and is never an integer', () => {
    for (const id of ['123', '0', 'a:b', 'evt_1', '::', '%3A', '-5']) {
      const jobId = jobIdFor(id);
      expect(jobId).not.toContain(':');
      expect(Number.isInteger(Number(jobId))).toBe(false);
    }
  });

  it('is deterministic, injective and reversible', () => {
    expect(jobIdFor('a:b')).toBe(jobIdFor('a:b'));
    expect(jobIdFor('a:b')).not.toBe(jobIdFor('a%3Ab'));
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 255, unit: 'binary' }),
        fc.string({ minLength: 1, maxLength: 20 }),
        (a, b) => {
          expect(eventIdFromJobId(jobIdFor(a))).toBe(a);
          if (a !== b) expect(jobIdFor(a)).not.toBe(jobIdFor(b));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('refuses job ids it did not make', () => {
    expect(eventIdFromJobId('42')).toBeUndefined();
  });

  it('names the idempotency key as the SPEC does', () => {
    expect(idempotencyKey('evt_1')).toBe('groq:event:evt_1');
  });
});

describe('queueShards', () => {
  it('is exactly the configured queue with one shard', () => {
    expect(
      queueShards({ queueName: 'groq-events', queuePrefix: '{groq}', queueShards: 1 }),
    ).toEqual([{ index: 0, name: 'groq-events', prefix: '{groq}' }]);
  });

  it('gives each shard its own name and a hash tag in its own slot range', () => {
    const shards = queueShards({ queueName: 'q', queuePrefix: 'app{groq}', queueShards: 3 });
    expect(shards.map((shard) => shard.name)).toEqual(['q-0', 'q-1', 'q-2']);
    shards.forEach((shard, index) => {
      const tag = /\{(.*)\}/.exec(shard.prefix)?.[1] ?? '';
      expect(shard.prefix).toBe(`app{${tag}}`);
      expect(tag.startsWith(`groq-${index}`)).toBe(true);
      const slot = clusterSlot(tag);
      expect(slot).toBeGreaterThanOrEqual(Math.floor((index * 16384) / 3));
      expect(slot).toBeLessThan(Math.floor(((index + 1) * 16384) / 3));
    });
    // Deterministic: every process computes the same names.
    expect(queueShards({ queueName: 'q', queuePrefix: 'app{groq}', queueShards: 3 })).toEqual(
      shards,
    );
    expect(queueShards({ queueName: 'q', queuePrefix: 'bull', queueShards: 2 })[1]?.prefix).toBe(
      'bull-1',
    );
  });

  it('computes Redis Cluster slots like CLUSTER KEYSLOT', () => {
    // 0x31C3 is the CRC16 check value of "123456789" in the Redis Cluster specification.
    expect(clusterSlot('123456789')).toBe(0x31c3 % 16384);
    expect(clusterSlot('groq')).toBe(2869);
  });

  it('spreads ids stably over every shard', () => {
    const counts = [0, 0, 0];
    for (let i = 0; i < 3000; i++) {
      const shard = shardOf(`evt_${i}`, 3);
      expect(shardOf(`evt_${i}`, 3)).toBe(shard);
      counts[shard] = (counts[shard] ?? 0) + 1;
    }
    for (const count of counts) expect(count).toBeGreaterThan(800);
    expect(shardOf('anything', 1)).toBe(0);
  });
});

describe('backoffDelay', () => {
  it('grows exponentially with equal jitter and stays under the cap', () => {
    expect(backoffDelay(1, 1000, () => 0)).toBe(500);
    expect(backoffDelay(1, 1000, () => 0.999999)).toBe(999);
    expect(backoffDelay(3, 1000, () => 0)).toBe(2000);
    expect(backoffDelay(4, 1000, () => 1)).toBe(8000);
    expect(backoffDelay(60, 1000, () => 1)).toBe(MAX_BACKOFF_MS);
    expect(backoffDelay(100, 3_600_000, () => 0)).toBe(MAX_BACKOFF_MS / 2);
  });
});
