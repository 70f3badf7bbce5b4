// What `pnpm test` needs on the machine besides Node and pnpm, found the way the tests find it.
// Plain JavaScript, outside src/: `pnpm test` checks it before anything is built, and the
// compiled test support (src/postgres.ts) imports the same finder, so both agree.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Where Debian and Ubuntu install the PostgreSQL server, one directory per major version. */
const DEBIAN_POSTGRES = '/usr/lib/postgresql';
/** Where the browser tests look for Chromium unless CHROMIUM_PATH says otherwise. */
export const DEFAULT_CHROMIUM = '/usr/bin/chromium';

function executable(file) {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** An executable named `command` on a PATH string, or undefined. */
export function findOnPath(command, path) {
  for (const dir of (path ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, command);
    if (executable(candidate)) return candidate;
  }
  return undefined;
}

/**
 * The directory holding the PostgreSQL server binaries (`initdb`, `postgres`), or undefined:
 * `PG_BIN_DIR`, else `pg_config --bindir`, else the newest version under /usr/lib/postgresql.
 */
export function postgresBinDir(env = process.env) {
  const fromEnv = env.PG_BIN_DIR;
  if (fromEnv !== undefined && existsSync(join(fromEnv, 'initdb'))) return fromEnv;
  try {
    const dir = execFileSync('pg_config', ['--bindir'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      env,
    }).trim();
    if (existsSync(join(dir, 'initdb'))) return dir;
  } catch {
    // No pg_config on PATH: look where Debian installs the server.
  }
  if (!existsSync(DEBIAN_POSTGRES)) return undefined;
  const versions = readdirSync(DEBIAN_POSTGRES)
    .filter(
      (name) => /^\d+$/.test(name) && existsSync(join(DEBIAN_POSTGRES, name, 'bin', 'initdb')),
    )
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(DEBIAN_POSTGRES, versions[0], 'bin');
}

/**
 * The prerequisites of `pnpm test` missing from this machine, each with how to get it; empty
 * when nothing is missing.
 */
export function missingPrerequisites(env = process.env) {
  const missing = [];
  if (findOnPath('redis-server', env.PATH) === undefined) {
    missing.push(
      'redis-server on PATH (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis)',
    );
  }
  if (!env.TEST_DATABASE_URL) {
    const bin = postgresBinDir(env);
    if (bin === undefined || !executable(join(bin, 'postgres'))) {
      missing.push(
        'the PostgreSQL server binaries initdb and postgres (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql; or set PG_BIN_DIR to their directory, or TEST_DATABASE_URL to a server the tests may create databases on)',
      );
    }
  }
  const chromium = env.CHROMIUM_PATH || DEFAULT_CHROMIUM;
  if (!executable(chromium)) {
    missing.push(
      `Chromium at ${chromium} (Debian: apt-get install chromium; Ubuntu: apt-get install chromium-browser; or set CHROMIUM_PATH to a Chromium or Chrome binary)`,
    );
  }
  return missing;
}
