import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { onFreePorts, type RunningProcess, serverUp, startProcess } from './process.js';

/** Options for {@link startRedis}. */
export interface StartRedisOptions {
  /** Port to listen on. Default: a free one. */
  port?: number;
  /** Data directory (kept across restarts). Default: a new temporary directory. */
  dir?: string;
  /** Turn AOF on with `appendfsync everysec`. Default false (nothing on disk). */
  appendOnly?: boolean;
  /** Extra `redis-server` arguments. */
  args?: readonly string[];
}

/** A throwaway `redis-server` process owned by a test. */
export interface TestRedis {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  readonly process: RunningProcess;
  /** Sends one command over a raw connection and returns the raw reply. */
  command(...args: string[]): Promise<string>;
  /** SIGKILL (a crash). */
  kill(): Promise<void>;
  /** SIGTERM and wait. */
  stop(): Promise<void>;
  /** Starts redis-server again on the same port and data directory. */
  restart(): Promise<TestRedis>;
  /** Stops it and removes its temporary directory. */
  cleanup(): Promise<void>;
}

/**
 * Starts a `redis-server` from PATH on a free port and waits until it answers PING. A free port
 * is only free until something binds it: when another process takes it first, it starts again
 * on another (unless the caller chose the port).
 */
export function startRedis(options: StartRedisOptions = {}): Promise<TestRedis> {
  return onFreePorts(() => launch(options, options.dir === undefined), options.port === undefined);
}

/**
 * `ownDir`: the data directory is this helper's, so `cleanup` removes it — also after
 * `restart`, which hands the same directory on.
 */
async function launch(options: StartRedisOptions, ownDir: boolean): Promise<TestRedis> {
  const port = options.port ?? (await freePort());
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'groq-redis-'));
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    options.appendOnly ? 'yes' : 'no',
    '--appendfsync',
    'everysec',
    '--maxmemory-policy',
    'noeviction',
    '--protected-mode',
    'no',
    '--enable-debug-command',
    'local',
    ...(options.args ?? []),
  ];
  const child = startProcess('redis-server', args, { echo: false });
  const url = `redis://127.0.0.1:${port}`;
  await serverUp(
    child,
    `redis-server on port ${port}`,
    async () => (await rawCommand(port, ['PING'])).startsWith('+PONG'),
    { timeoutMs: 10_000 },
  ).catch((error: unknown) => {
    if (options.dir === undefined) rmSync(dir, { recursive: true, force: true });
    throw error;
  });
  const redis: TestRedis = {
    port,
    url,
    dir,
    process: child,
    command: (...command) => rawCommand(port, command),
    async kill() {
      await child.kill();
    },
    async stop() {
      await child.stop('SIGTERM', 10_000);
    },
    restart: () => launch({ ...options, port, dir }, ownDir),
    async cleanup() {
      await child.kill();
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
  return redis;
}

/** One RESP command over a fresh socket; resolves with the first reply chunk. */
export function rawCommand(
  port: number,
  args: readonly string[],
  timeoutMs = 2000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`redis on ${port} did not answer ${args[0]} in ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.once('data', (data) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(data.toString('utf8'));
    });
    socket.once('close', () => {
      clearTimeout(timer);
      reject(new Error(`redis on ${port} closed the connection before answering ${args[0]}`));
    });
    const payload = [`*${args.length}`];
    for (const arg of args) payload.push(`$${Buffer.byteLength(arg)}`, arg);
    socket.write(`${payload.join('\r\n')}\r\n`);
  });
}
