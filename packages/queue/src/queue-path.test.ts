import { describe, expect, it } from 'vitest';
import { chooseQueuePath, FastPathUnavailableError, STOCK_PATH } from './queue-path.js';

describe('chooseQueuePath', () => {
  const single = { isCluster: false };
  const cluster = { isCluster: true };

  it('takes the fast path on a single Redis with the reviewed BullMQ, unless it is off', async () => {
    expect((await chooseQueuePath('auto', single)).path.kind).toBe('fast');
    expect((await chooseQueuePath('on', single)).path.kind).toBe('fast');
    expect(await chooseQueuePath('off', single)).toEqual({ path: STOCK_PATH, warning: undefined });
  });

  it('falls back to the stock path on a Cluster with one warning line saying why', async () => {
    const choice = await chooseQueuePath('auto', cluster);
    expect(choice.path).toBe(STOCK_PATH);
    expect(choice.warning).toMatch(/^Running without the queue fast path: .*Redis Cluster/);
    expect(choice.warning).not.toContain('\n');
  });

  it('refuses a Cluster when the fast path is required', async () => {
    await expect(chooseQueuePath('on', cluster)).rejects.toBeInstanceOf(FastPathUnavailableError);
    await expect(chooseQueuePath('on', cluster)).rejects.toThrow(/^QUEUE_FAST_PATH=on, but /);
  });
});
