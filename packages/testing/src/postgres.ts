import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { postgresBinDir as findPostgresBinDir } from '../prerequisites.mjs';
import { freePort } from './ports.js';
import { onFreePorts, type RunningProcess, serverUp, startProcess } from './process.js';

/** Options for {@link startPostgres}. */
export interface StartPostgresOptions {
  /** Port to listen on. Default: a free one. */
  port?: number;
}

/** A PostgreSQL server for one test: a throwaway one, or `TEST_DATABASE_URL`'s. */
export interface TestPostgres {
  /** Connection URL of the server's `postgres` database (for admin statements). */
  readonly adminUrl: string;
  /** True when the server is a throwaway one this helper started (it can be stopped). */
  readonly owned: boolean;
  /** The postmaster's pid of a throwaway server while it runs (its backends are its children). */
  readonly pid: number | undefined;
  /**
   * Creates a new, uniquely named database and returns its URL. Databases made here are dropped
   * by `cleanup` (on a server the test did not start, only those).
   */
  createDatabase(prefix?: string): Promise<string>;
  /** Runs one statement as the admin user on `url` (default: the admin database). */
  query<Row extends Record<string, unknown> = Record<string, unknown>>(
    sql: string,
    params?: unknown[],
    url?: string,
  ): Promise<Row[]>;
  /** Fast shutdown of a throwaway server (throws for `TEST_DATABASE_URL`). */
  stop(): Promise<void>;
  /** Starts a stopped throwaway server again on the same port and data directory. */
  start(): Promise<void>;
  /** Drops the databases made here; stops a throwaway server and removes its directory. */
  cleanup(): Promise<void>;
}

/** Where the PostgreSQL server binaries are, or undefined when none are installed. */
export function postgresBinDir(): string | undefined {
  // The same finder `pnpm test` checks its prerequisites with, before anything is built.
  return findPostgresBinDir(process.env);
}

/**
 * A PostgreSQL server for a test. With `TEST_DATABASE_URL` set, that server (tests then only
 * create and drop their own databases on it); otherwise `initdb` and `postgres` from the
 * machine's server packages, on a free port and a new temporary data directory, with trust
 * authentication on 127.0.0.1 only. As root (CI), the server runs as the `postgres` user, which
 * must exist: PostgreSQL refuses to run as root.
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<TestPostgres> {
  const external = process.env.TEST_DATABASE_URL;
  if (external !== undefined && external !== '') return useServer(external, undefined);
  const bin = postgresBinDir();
  if (bin === undefined) {
    throw new Error(
      'PostgreSQL server binaries not found: install postgresql (Debian: apt-get install postgresql) or set TEST_DATABASE_URL',
    );
  }
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'groq-pg-'));
  const data = join(dir, 'data');
  const owner = process.getuid?.() === 0 ? postgresUser() : undefined;
  if (owner !== undefined) {
    chownSync(dir, owner.uid, owner.gid);
    chmodSync(dir, 0o700);
  }
  execFileSync(
    join(bin, 'initdb'),
    ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'],
    { stdio: 'pipe', ...owner },
  );
  // Taken first, the port is another on the next attempt (unless the caller chose it); the data
  // directory from initdb serves every attempt, and goes when none starts.
  try {
    return await onFreePorts(async (attempt) => {
      const server: ServerProcess = {
        bin,
        data,
        port: attempt === 1 ? port : await freePort(),
        owner,
        process: undefined,
      };
      await launch(server);
      return useServer(`postgres://postgres@127.0.0.1:${server.port}/postgres`, { server, dir });
    }, options.port === undefined);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

interface ServerProcess {
  readonly bin: string;
  readonly data: string;
  readonly port: number;
  readonly owner: { uid: number; gid: number } | undefined;
  process: RunningProcess | undefined;
}

async function launch(server: ServerProcess): Promise<void> {
  const args = [
    '-D',
    server.data,
    '-p',
    String(server.port),
    '-h',
    '127.0.0.1',
    '-k',
    server.data,
    '-c',
    'fsync=off',
    '-c',
    'synchronous_commit=off',
    '-c',
    'full_page_writes=off',
    '-c',
    'max_connections=200',
  ];
  const child = startProcess(join(server.bin, 'postgres'), args, {
    echo: false,
    ...(server.owner === undefined ? {} : { user: server.owner }),
  });
  server.process = child;
  const url = `postgres://postgres@127.0.0.1:${server.port}/postgres`;
  await serverUp(
    child,
    `postgres on port ${server.port}`,
    async () => {
      await runQuery(url, 'select 1');
      return true;
    },
    { timeoutMs: 30_000, intervalMs: 50 },
  );
}

function postgresUser(): { uid: number; gid: number } {
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch (error) {
    throw new Error('running as root needs a "postgres" user to run the test PostgreSQL server', {
      cause: error,
    });
  }
}

async function runQuery<Row extends Record<string, unknown>>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<Row[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on('error', () => {});
  await client.connect();
  try {
    const result = await client.query<Row>(sql, params);
    return result.rows;
  } finally {
    await client.end().catch(() => {});
  }
}

let databaseCounter = 0;

function useServer(
  adminUrl: string,
  own: { server: ServerProcess; dir: string } | undefined,
): TestPostgres {
  const created: string[] = [];
  const urlOf = (database: string): string => {
    const url = new URL(adminUrl);
    url.pathname = `/${database}`;
    return url.toString();
  };
  const needOwn = (what: string): { server: ServerProcess; dir: string } => {
    if (own === undefined) throw new Error(`cannot ${what} TEST_DATABASE_URL's server`);
    return own;
  };
  return {
    adminUrl,
    owned: own !== undefined,
    get pid() {
      return own?.server.process?.pid;
    },
    async createDatabase(prefix = 'groq_test') {
      databaseCounter += 1;
      const name = `${prefix}_${process.pid}_${Date.now().toString(36)}_${databaseCounter}`;
      await runQuery(adminUrl, `create database "${name}"`);
      created.push(name);
      return urlOf(name);
    },
    query(sql, params, url) {
      return runQuery(url ?? adminUrl, sql, params);
    },
    async stop() {
      const { server } = needOwn('stop');
      await server.process?.stop('SIGINT', 15_000);
      server.process = undefined;
    },
    async start() {
      const { server } = needOwn('start');
      if (server.process !== undefined) return;
      await launch(server);
    },
    async cleanup() {
      if (own === undefined) {
        for (const name of created.splice(0)) {
          await runQuery(adminUrl, `drop database if exists "${name}" with (force)`).catch(
            () => {},
          );
        }
        return;
      }
      created.length = 0;
      await own.server.process?.stop('SIGINT', 15_000);
      own.server.process = undefined;
      rmSync(own.dir, { recursive: true, force: true });
    },
  };
}
