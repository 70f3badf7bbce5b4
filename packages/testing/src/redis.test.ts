import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from './ports.js';
import { PortTakenError } from './process.js';
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

describe('startRedis when a port is taken', () => {
  let holder: Server | undefined;
  afterAll(
    () => new Promise<void>((resolve) => (holder ? holder.close(() => resolve()) : resolve())),
  );

  it("reports the clash at once (PortTakenError, with the server's own words) when the caller chose the port", async () => {
    const port = await freePort();
    holder = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => holder?.listen(port, '127.0.0.1', resolve));
    const started = Date.now();
    const failure = await startRedis({ port }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(PortTakenError);
    expect(String(failure)).toContain('Address already in use');
    // It noticed the exit rather than waiting out its 10 s PING deadline.
    expect(Date.now() - started).toBeLessThan(9_000);
  });

  it('exits for another reason: a plain error carrying the output', async () => {
    const failure = await startRedis({ args: ['--no-such-option', 'x'] }).catch(
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(Error);
    expect(failure).not.toBeInstanceOf(PortTakenError);
    expect(String(failure)).toMatch(/exited .* at start/);
  });
});
