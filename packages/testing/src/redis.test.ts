import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { startRedis, type TestRedis } from './redis.js';

describe('startRedis', () => {
  let redis: TestRedis | undefined;
  afterAll(async () => redis?.cleanup());

  it('starts a private redis-server that can be killed and restarted on the same port', async () => {
    redis = await startRedis({ appendOnly: true });
    expect(redis.port).not.toBe(6379);
    expect(await redis.command('SET', 'k', 'v')).toBe('+OK\r\n');
    await redis.command('BGREWRITEAOF');
    await redis.kill();
    await expect(redis.command('PING')).rejects.toThrow();
    redis = await redis.restart();
    expect(await redis.command('PING')).toBe('+PONG\r\n');
    // Its temporary directory is still its own: cleanup removes it.
    const { dir } = redis;
    await redis.cleanup();
    redis = undefined;
    expect(existsSync(dir)).toBe(false);
  });
});
