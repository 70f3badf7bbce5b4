import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, delimiter, join } from 'node:path';

/**
 * Where the local system's Redis comes from. `spawned` is a throwaway `redis-server` this run
 * stops on exit: started now, or `adopted` from an earlier run that died without stopping it.
 */
export type RedisSource =
  | { kind: 'configured'; url: string }
  | { kind: 'existing'; url: string }
  | { kind: 'spawned'; url: string; adopted: boolean; stop: () => Promise<void> };

/**
 * The state directory's record of the throwaway `redis-server` while it runs: a runner killed
 * with SIGKILL (or a crash) cannot stop it, and the next run finds it here.
 */
export const SPAWNED_REDIS_FILE = 'redis-server.json';

/** What {@link SPAWNED_REDIS_FILE} holds. */
interface SpawnedRecord {
  /** The `pnpm start` runner that started it. */
  runnerPid: number;
  /** The redis-server's own. */
  pid: number;
  port: number;
  /** Its temporary directory (removed when it is stopped). */
  dir: string;
}

/** Prefix of the throwaway server's temporary directory. */
const DIR_PREFIX = 'groq-local-redis-';

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
  return redisCommand(port, ['PING'], timeoutMs, host).then(
    (reply) => reply.startsWith('+PONG'),
    () => false,
  );
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
  /** Where the throwaway server is recorded while it runs ({@link SPAWNED_REDIS_FILE}). */
  stateDir: string;
}

/**
 * Uses `REDIS_URL` when set; else the throwaway `redis-server` an earlier run left behind when
 * it was killed (its events are still in it: they are handled, not lost, and this run stops it
 * on exit); else a Redis already answering on 127.0.0.1:`probePort`; else starts a throwaway
 * `redis-server` (nothing kept on disk) on `probePort` if it is free, or on another free port.
 */
export async function resolveRedis(options: ResolveRedisOptions): Promise<RedisSource> {
  if (options.redisUrl) return { kind: 'configured', url: options.redisUrl };
  const leftover = await adoptLeftover(options.stateDir);
  if (leftover !== undefined) return leftover;
  if (await redisAnswers('127.0.0.1', options.probePort)) {
    return { kind: 'existing', url: `redis://127.0.0.1:${options.probePort}` };
  }
  const binary = findOnPath('redis-server', options.path);
  if (binary === undefined) throw new NoRedisError(NO_REDIS_MESSAGE);
  // On the probed port when it is free: at 6379 the CLI (`failed list`, `stats`) finds it
  // without REDIS_URL. Taken by something else: any free port.
  const port = (await tryPort(options.probePort)) ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), DIR_PREFIX));
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
  const record: SpawnedRecord | undefined =
    child.pid === undefined ? undefined : { runnerPid: process.pid, pid: child.pid, port, dir };
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    rmSync(dir, { recursive: true, force: true });
    if (record !== undefined) forgetRecord(options.stateDir, record);
  };
  const deadline = Date.now() + 10_000;
  while (!(await redisAnswers('127.0.0.1', port, 200))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new NoRedisError(`redis-server (${binary}) did not start on port ${port}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (record !== undefined) {
    mkdirSync(options.stateDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(options.stateDir, SPAWNED_REDIS_FILE), `${JSON.stringify(record)}\n`, {
      mode: 0o600,
    });
  }
  return { kind: 'spawned', url: `redis://127.0.0.1:${port}`, adopted: false, stop };
}

/**
 * The throwaway server {@link SPAWNED_REDIS_FILE} records, when its runner is gone and the
 * server still runs (it says its own process id on its port): adopted, to be stopped by this
 * run. A record whose server is gone is removed, with the server's temporary directory; one
 * whose runner still runs (another `pnpm start`) is left to it.
 */
async function adoptLeftover(stateDir: string): Promise<RedisSource | undefined> {
  const file = join(stateDir, SPAWNED_REDIS_FILE);
  const record = readRecord(file);
  if (record === undefined) return undefined;
  if (isAlive(record.runnerPid) && record.runnerPid !== process.pid) return undefined;
  const info = await redisCommand(record.port, ['INFO', 'server']).catch(() => '');
  const serving = new RegExp(`^process_id:${record.pid}\r?$`, 'm').test(info);
  if (!serving) {
    removeServerDir(record.dir);
    rmSync(file, { force: true });
    return undefined;
  }
  const adopted: SpawnedRecord = { ...record, runnerPid: process.pid };
  writeFileSync(file, `${JSON.stringify(adopted)}\n`, { mode: 0o600 });
  const stop = async () => {
    // Not this process's child: signalled by its pid, and waited for by polling.
    if (isAlive(record.pid)) process.kill(record.pid, 'SIGTERM');
    const deadline = Date.now() + 5000;
    while (isAlive(record.pid) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    if (isAlive(record.pid)) process.kill(record.pid, 'SIGKILL');
    removeServerDir(record.dir);
    forgetRecord(stateDir, adopted);
  };
  return { kind: 'spawned', url: `redis://127.0.0.1:${record.port}`, adopted: true, stop };
}

function readRecord(file: string): SpawnedRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    rmSync(file, { force: true });
    return undefined;
  }
  const record = value as Partial<SpawnedRecord> | null;
  const whole = (n: unknown): n is number => Number.isInteger(n) && (n as number) > 0;
  if (
    record === null ||
    typeof record !== 'object' ||
    !whole(record.runnerPid) ||
    !whole(record.pid) ||
    !whole(record.port) ||
    typeof record.dir !== 'string'
  ) {
    rmSync(file, { force: true });
    return undefined;
  }
  return record as SpawnedRecord;
}

/** Removes the record, unless another run has since written its own there. */
function forgetRecord(stateDir: string, record: SpawnedRecord): void {
  const file = join(stateDir, SPAWNED_REDIS_FILE);
  const current = existsSync(file) ? readRecord(file) : undefined;
  if (current?.pid === record.pid && current.port === record.port) rmSync(file, { force: true });
}

/** Removes a throwaway server's temporary directory (only ever one named as this module names them). */
function removeServerDir(dir: string): void {
  if (basename(dir).startsWith(DIR_PREFIX)) rmSync(dir, { recursive: true, force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** One command over a fresh connection to host:`port`; resolves with the whole reply. */
function redisCommand(
  port: number,
  args: readonly string[],
  timeoutMs = 1000,
  host = '127.0.0.1',
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, host);
    let reply = '';
    const done = (error?: Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(reply);
    };
    const timer = setTimeout(() => done(new Error(`no answer on ${port}`)), timeoutMs);
    socket.setEncoding('utf8');
    socket.once('error', (error) => done(error));
    socket.once('close', () => done(new Error(`connection to ${port} closed`)));
    socket.on('data', (chunk: string) => {
      reply += chunk;
      // A bulk string (`$<length>\r\n<bytes>\r\n`) is whole once its bytes are in; anything else
      // is one line.
      const bulk = /^\$(-?[0-9]+)\r\n/.exec(reply);
      if (bulk === null) {
        if (reply.includes('\r\n')) done();
        return;
      }
      const length = Number(bulk[1]);
      if (length < 0 || Buffer.byteLength(reply) >= bulk[0].length + length + 2) done();
    });
    socket.write(
      `*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')}`,
    );
  });
}
