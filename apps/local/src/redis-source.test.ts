import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, rawCommand, startRedis } from '@groq-webhooks/testing';
import { describe, expect, it } from 'vitest';
import { NoRedisError, redisAnswers, resolveRedis } from './redis-source.js';

describe('resolveRedis', () => {
  it('uses REDIS_URL as given, without probing', async () => {
    expect(
      await resolveRedis({ redisUrl: 'redis://example:6380', probePort: 1, path: '' }),
    ).toEqual({
      kind: 'configured',
      url: 'redis://example:6380',
    });
  });

  it('uses a Redis that already answers on the probe port', async () => {
    const redis = await startRedis();
    try {
      expect(
        await resolveRedis({ redisUrl: undefined, probePort: redis.port, path: process.env.PATH }),
      ).toEqual({
        kind: 'existing',
        url: redis.url,
      });
    } finally {
      await redis.cleanup();
    }
  });

  it('starts a throwaway redis-server on the probed port when nothing answers, and stops it', async () => {
    const probePort = await freePort();
    const source = await resolveRedis({
      redisUrl: undefined,
      probePort,
      path: process.env.PATH,
    });
    expect(source.kind).toBe('spawned');
    const port = Number(new URL(source.url).port);
    // Where the CLI looks by default (6379 outside tests), so `failed list` finds it.
    expect(port).toBe(probePort);
    expect(await rawCommand(port, ['PING'])).toBe('+PONG\r\n');
    if (source.kind === 'spawned') await source.stop();
    expect(await redisAnswers('127.0.0.1', port, 300)).toBe(false);
  });

  it('explains how to get Redis when there is no redis-server on PATH', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'groq-empty-'));
    try {
      const attempt = resolveRedis({
        redisUrl: undefined,
        probePort: await freePort(),
        path: empty,
      });
      await expect(attempt).rejects.toBeInstanceOf(NoRedisError);
      await expect(attempt).rejects.toThrow(
        /apt-get install redis-server[\s\S]*docker compose up -d redis/,
      );
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('takes another free port when the probed one is busy with something that is not Redis', async () => {
    const busy = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const address = busy.address();
    const probePort = typeof address === 'object' && address !== null ? address.port : 0;
    try {
      const source = await resolveRedis({ redisUrl: undefined, probePort, path: process.env.PATH });
      expect(source.kind).toBe('spawned');
      const port = Number(new URL(source.url).port);
      expect(port).not.toBe(probePort);
      expect(await rawCommand(port, ['PING'])).toBe('+PONG\r\n');
      if (source.kind === 'spawned') await source.stop();
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
  });
});
