import { userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from './embedded-postgres.js';

/** Where the local system's event history lives. */
export type ArchiveSource =
  | { kind: 'configured'; url: string }
  | { kind: 'existing'; url: string }
  | { kind: 'embedded'; url: string; dataDir: string; stop: () => Promise<void> };

/** The database `pnpm start` uses (and creates when missing) on a PostgreSQL it finds. */
export const LOCAL_DATABASE = 'groq_webhooks';

/** Options for {@link resolveArchive}. */
export interface ResolveArchiveOptions {
  /** `ARCHIVE_DATABASE_URL`, when set. */
  archiveUrl: string | undefined;
  /** Port checked for the machine's own PostgreSQL on 127.0.0.1. Default 5432. */
  probePort: number;
  /** The local state folder (`.local/`): the embedded database goes in `pglite/` there. */
  stateDir: string;
  /** `PGUSER` / `PGPASSWORD` and the login name are tried on the machine's PostgreSQL. */
  env: Readonly<Record<string, string | undefined>>;
  /** Told why the machine's PostgreSQL was not used (e.g. it refused every login). */
  note?: (line: string) => void;
}

/**
 * Uses `ARCHIVE_DATABASE_URL` when set; else the machine's PostgreSQL when one answers on
 * 127.0.0.1:`probePort` and lets us in (creating the `groq_webhooks` database there when it is
 * missing; nothing is ever dropped); else an embedded PostgreSQL (PGlite) with its data under
 * `<stateDir>/pglite`, served on a free port for as long as `pnpm start` runs.
 */
export async function resolveArchive(options: ResolveArchiveOptions): Promise<ArchiveSource> {
  if (options.archiveUrl) return { kind: 'configured', url: options.archiveUrl };
  const existing = await machinePostgres(options);
  if (existing !== undefined) return { kind: 'existing', url: existing };
  const dataDir = join(options.stateDir, 'pglite');
  const embedded = await startEmbeddedPostgres({ dataDir });
  return { kind: 'embedded', url: embedded.url, dataDir, stop: () => embedded.close() };
}

async function machinePostgres(options: ResolveArchiveOptions): Promise<string | undefined> {
  const users = [...new Set([options.env.PGUSER, safeLogin(), 'postgres'])].filter(
    (user): user is string => user !== undefined && user !== '',
  );
  let reason: string | undefined;
  for (const user of users) {
    const base = new URL(`postgres://127.0.0.1:${options.probePort}/postgres`);
    base.username = encodeURIComponent(user);
    if (options.env.PGPASSWORD) base.password = encodeURIComponent(options.env.PGPASSWORD);
    const client = new pg.Client({
      connectionString: base.toString(),
      connectionTimeoutMillis: 1000,
    });
    client.on('error', () => {});
    try {
      await client.connect();
    } catch (error) {
      const code = (error as { code?: string }).code;
      // Nothing listening: no machine PostgreSQL at all, no need to try other users.
      if (code === 'ECONNREFUSED' || code === 'ETIMEDOUT' || code === 'EHOSTUNREACH')
        return undefined;
      reason = (error as Error).message;
      continue;
    }
    try {
      const { rows } = await client.query('select 1 from pg_database where datname = $1', [
        LOCAL_DATABASE,
      ]);
      if (rows.length === 0) {
        // Another `pnpm start` may create it at the same moment (42P04): that is fine too.
        await client
          .query(`create database ${LOCAL_DATABASE}`)
          .catch((error: { code?: string }) => {
            if (error.code !== '42P04') throw error;
          });
      }
      base.pathname = `/${LOCAL_DATABASE}`;
      return base.toString();
    } catch (error) {
      reason = (error as Error).message;
    } finally {
      await client.end().catch(() => {});
    }
  }
  if (reason !== undefined) {
    options.note?.(
      `PostgreSQL on 127.0.0.1:${options.probePort} did not let us in (${reason}); using an embedded one. Set ARCHIVE_DATABASE_URL (or PGUSER/PGPASSWORD) to use yours.`,
    );
  }
  return undefined;
}

function safeLogin(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return undefined;
  }
}
