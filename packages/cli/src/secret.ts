import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** Where `pnpm start` keeps the local development secret, relative to the state folder. */
const DEV_SECRET_FILE = 'dev-secret';

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
 * The local development secret `pnpm start` wrote (`GROQ_LOCAL_DIR`, default `.local/` at the
 * repo root), or undefined when there is none.
 */
export function readDevSecret(
  env: Readonly<Record<string, string | undefined>>,
  cwd: string,
): { secret: string; path: string } | undefined {
  const root = findRepoRoot(cwd);
  const dir = env.GROQ_LOCAL_DIR || (root === undefined ? undefined : join(root, '.local'));
  if (dir === undefined) return undefined;
  const path = join(resolve(cwd, dir), DEV_SECRET_FILE);
  if (!existsSync(path)) return undefined;
  const secret = readFileSync(path, 'utf8').trim();
  return secret.length > 0 ? { secret, path } : undefined;
}
