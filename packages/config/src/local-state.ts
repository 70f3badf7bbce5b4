import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Env } from './fields.js';

/** Files `pnpm start` keeps in the local state folder: the dev webhook secret and admin token. */
export const DEV_SECRET_FILE = 'dev-secret';
export const ADMIN_TOKEN_FILE = 'admin-token';
/** File where `pnpm start` writes the URL of the local event history database it set up. */
export const ARCHIVE_URL_FILE = 'archive-url';

/** The nearest folder at or above `start` holding pnpm-workspace.yaml, or undefined. */
export function findRepoRoot(start: string): string | undefined {
  let dir = resolve(start);
  for (;;) {
    if (existsSync(join(dir, 'pnpm-workspace.yaml'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/**
 * The folder where `pnpm start` keeps local development state, shared with the CLI:
 * `GROQ_LOCAL_DIR` (relative to `start`) when set, else `.local/` at the repo root above `start`.
 */
export function localStateDir(env: Env, start: string): string | undefined {
  if (env.GROQ_LOCAL_DIR) return resolve(start, env.GROQ_LOCAL_DIR);
  const root = findRepoRoot(start);
  return root === undefined ? undefined : join(root, '.local');
}
