import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, rawCommand, startProcess, startRedis } from '@groq-webhooks/testing';
import { afterAll, describe, expect, it } from 'vitest';
import {
  NoRedisError,
  type RedisSource,
  redisAnswers,
  resolveRedis,
  SPAWNED_REDIS_FILE,
} from './redis-source.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh state directory, removed after the tests. */
function state(): string {
  const dir = mkdtempSync(join(tmpdir(), 'groq-local-state-'));
  dirs.push(dir);
  return dir;
}

function readRecord(stateDir: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(stateDir, SPAWNED_REDIS_FILE), 'utf8'));
}

/** The pid of a process that has exited: a runner that was killed. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  const pid = child.pid;
  await new Promise((resolve) => child.once('exit', resolve));
  if (pid === undefined) throw new Error('no pid');
  return pid;
}

/** Makes the record say its runner is `runnerPid`. */
function recordRunner(stateDir: string, runnerPid: number): void {
  const file = join(stateDir, SPAWNED_REDIS_FILE);
  writeFileSync(file, JSON.stringify({ ...readRecord(stateDir), runnerPid }));
}

/** What a run finds, or starts, with nothing answering on its (free) probe port. */
async function throwaway(stateDir: string): Promise<RedisSource> {
  return resolveRedis({
    redisUrl: undefined,
    probePort: await freePort(),
    path: process.env.PATH,
    stateDir,
  });
}

async function stopSpawned(source: RedisSource): Promise<void> {
  if (source.kind === 'spawned') await source.stop();
}

describe('resolveRedis', () => {
  it('uses REDIS_URL as given, without probing', async () => {
    expect(
      await resolveRedis({
        redisUrl: 'redis://example:6380',
        probePort: 1,
        path: '',
        stateDir: state(),
      }),
    ).toEqual({
      kind: 'configured',
      url: 'redis://example:6380',
    });
  });

  it('uses a Redis that already answers on the probe port', async () => {
    const redis = await startRedis();
    try {
      expect(
        await resolveRedis({
          redisUrl: undefined,
          probePort: redis.port,
          path: process.env.PATH,
          stateDir: state(),
        }),
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
    const stateDir = state();
    const source = await resolveRedis({
      redisUrl: undefined,
      probePort,
      path: process.env.PATH,
      stateDir,
    });
    expect(source.kind).toBe('spawned');
    const port = Number(new URL(source.url).port);
    // Where the CLI looks by default (6379 outside tests), so `failed list` finds it.
    expect(port).toBe(probePort);
    expect(await rawCommand(port, ['PING'])).toBe('+PONG\r\n');
    // Recorded while it runs, so that a run killed before it can stop it leaves a trace.
    expect(readRecord(stateDir)).toMatchObject({ runnerPid: process.pid, port });
    if (source.kind === 'spawned') await source.stop();
    expect(await redisAnswers('127.0.0.1', port, 300)).toBe(false);
    expect(existsSync(join(stateDir, SPAWNED_REDIS_FILE))).toBe(false);
  });

  it('explains how to get Redis when there is no redis-server on PATH', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'groq-empty-'));
    try {
      const attempt = resolveRedis({
        redisUrl: undefined,
        probePort: await freePort(),
        path: empty,
        stateDir: state(),
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
      const source = await resolveRedis({
        redisUrl: undefined,
        probePort,
        path: process.env.PATH,
        stateDir: state(),
      });
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

describe('a throwaway redis-server whose run was killed', () => {
  it('is adopted by the next run, with its events, and stopped by it', async () => {
    const stateDir = state();
    const first = await throwaway(stateDir);
    const port = Number(new URL(first.url).port);
    const { pid, dir } = readRecord(stateDir) as { pid: number; dir: string };
    try {
      await rawCommand(port, ['SET', 'acknowledged', 'evt_1']);
      // The runner is SIGKILLed: nothing stops its server.
      recordRunner(stateDir, await deadPid());
      const second = await resolveRedis({
        redisUrl: undefined,
        probePort: await freePort(),
        path: process.env.PATH,
        stateDir,
      });
      expect(second).toMatchObject({ kind: 'spawned', adopted: true, url: first.url });
      expect(await rawCommand(port, ['GET', 'acknowledged'])).toBe('$5\r\nevt_1\r\n');
      expect(readRecord(stateDir)).toMatchObject({ runnerPid: process.pid, pid, port });
      await stopSpawned(second);
      expect(await redisAnswers('127.0.0.1', port, 300)).toBe(false);
      expect(existsSync(dir)).toBe(false);
      expect(existsSync(join(stateDir, SPAWNED_REDIS_FILE))).toBe(false);
    } finally {
      await stopSpawned(first);
    }
  });

  it('is left to its run while that still runs (a second start uses it as it finds it)', async () => {
    const stateDir = state();
    const probePort = await freePort();
    const first = await resolveRedis({
      redisUrl: undefined,
      probePort,
      path: process.env.PATH,
      stateDir,
    });
    const runner = startProcess(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
    try {
      recordRunner(stateDir, runner.pid);
      const second = await resolveRedis({
        redisUrl: undefined,
        probePort,
        path: process.env.PATH,
        stateDir,
      });
      expect(second).toEqual({ kind: 'existing', url: first.url });
      expect(readRecord(stateDir)).toMatchObject({ runnerPid: runner.pid });
    } finally {
      await runner.kill();
      await stopSpawned(first);
    }
  });

  it('is forgotten, with its directory, when its server is gone too; unreadable records likewise', async () => {
    const stateDir = state();
    const first = await throwaway(stateDir);
    const { pid, dir } = readRecord(stateDir) as { pid: number; dir: string };
    // Both gone (a reboot, say), the record and the directory left.
    process.kill(pid, 'SIGKILL');
    await expect
      .poll(() => redisAnswers('127.0.0.1', Number(new URL(first.url).port), 200))
      .toBe(false);
    recordRunner(stateDir, await deadPid());
    const second = await throwaway(stateDir);
    try {
      expect(second).toMatchObject({ kind: 'spawned', adopted: false });
      expect(existsSync(dir)).toBe(false);
      expect(readRecord(stateDir).pid).not.toBe(pid);
    } finally {
      await stopSpawned(second);
    }
    writeFileSync(join(stateDir, SPAWNED_REDIS_FILE), '{not json');
    const third = await throwaway(stateDir);
    await stopSpawned(third);
    expect(third).toMatchObject({ kind: 'spawned', adopted: false });
    expect(existsSync(join(stateDir, SPAWNED_REDIS_FILE))).toBe(false);
  });
});
