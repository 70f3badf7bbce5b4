import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEV_SECRET_FILE, localStateDir } from '@groq-webhooks/config';

/**
 * The local development secret `pnpm start` wrote (`GROQ_LOCAL_DIR`, default `.local/` at the
 * repo root), or undefined when there is none.
 */
export function readDevSecret(
  env: Readonly<Record<string, string | undefined>>,
  cwd: string,
): { secret: string; path: string } | undefined {
  const dir = localStateDir(env, cwd);
  if (dir === undefined) return undefined;
  const path = join(dir, DEV_SECRET_FILE);
  if (!existsSync(path)) return undefined;
  const secret = readFileSync(path, 'utf8').trim();
  return secret.length > 0 ? { secret, path } : undefined;
}
