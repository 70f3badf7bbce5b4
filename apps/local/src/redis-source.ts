import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** Where the local system's Redis comes from. */
export type RedisSource =
  | { kind: 'configured'; url: string }
  | { kind: 'existing'; url: string }
  | { kind: 'spawned'; url: string; stop: () => Promise<void> };

/** Raised when there is no Redis to use and no `redis-server` to start. */
export class NoRedisError extends Error {
  override name = 'NoRedisError';
}

/** The message shown when neither a Redis nor `redis-server` is available. */
export const NO_REDIS_MESSAGE = [
  'No Redis answers on 127.0.0.1 and there is no redis-server on PATH.',
  'Get one of:',
  '  - a local Redis: sudo apt-get install redis-server   |   brew install redis',
  '  - Redis in Docker: docker compose up -d redis   (then run pnpm start again)',
  '  - any Redis you have: REDIS_URL=redis://host:6379 pnpm start',
].join('\n');

/** True when something at host:port answers a Redis PING within `timeoutMs`. */
export function redisAnswers(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    const done = (answer: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('*1\r\n$4\r\nPING\r\n'));
    socket.once('data', (data) => done(data.toString('utf8').startsWith('+PONG')));
  });
}

/** Finds an executable on a PATH string. */
export function findOnPath(command: string, path: string | undefined): string | undefined {
  for (const dir of (path ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, command);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** Listens on `port` (0: any) on 127.0.0.1 and closes again: the port it got, or undefined. */
function tryPort(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      const got = typeof address === 'object' && address ? address.port : undefined;
      server.close(() => resolve(got));
    });
  });
}

async function freePort(): Promise<number> {
  const port = await tryPort(0);
  if (port === undefined) throw new NoRedisError('no free port on 127.0.0.1 for redis-server');
  return port;
}

/** Options for {@link resolveRedis}. */
export interface ResolveRedisOptions {
  /** `REDIS_URL`, when set. */
  redisUrl: string | undefined;
  /** Port checked for an already running local Redis. Default 6379. */
  probePort: number;
  /** PATH to look for `redis-server` on. */
  path: string | undefined;
}

/**
 * Uses `REDIS_URL` when set; else a Redis already answering on 127.0.0.1:`probePort`; else
 * starts a throwaway `redis-server` (nothing kept on disk) on `probePort` if it is free, or on
 * another free port.
 */
export async function resolveRedis(options: ResolveRedisOptions): Promise<RedisSource> {
  if (options.redisUrl) return { kind: 'configured', url: options.redisUrl };
  if (await redisAnswers('127.0.0.1', options.probePort)) {
    return { kind: 'existing', url: `redis://127.0.0.1:${options.probePort}` };
  }
  const binary = findOnPath('redis-server', options.path);
  if (binary === undefined) throw new NoRedisError(NO_REDIS_MESSAGE);
  // On the probed port when it is free: at 6379 the CLI (`failed list`, `stats`) finds it
  // without REDIS_URL. Taken by something else: any free port.
  const port = (await tryPort(options.probePort)) ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'groq-local-redis-'));
  const child = spawn(
    binary,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--maxmemory-policy',
      'noeviction',
    ],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  while (!(await redisAnswers('127.0.0.1', port, 200))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new NoRedisError(`redis-server (${binary}) did not start on port ${port}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { kind: 'spawned', url: `redis://127.0.0.1:${port}`, stop };
}
