import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_TOKEN_FILE, DEV_SECRET_FILE } from '@groq-webhooks/config';

/** Secrets `pnpm start` invents when none is configured, kept (git-ignored) between runs. */
export interface LocalSecrets {
  webhookSecret: string;
  adminToken: string;
}

/**
 * Reads the local development secret and admin token from `dir`, making (and keeping, mode
 * 0600) whichever is missing. The CLI reads the same secret file, so `trigger` needs no flag.
 */
export function ensureLocalSecrets(dir: string): LocalSecrets & { created: string[] } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const created: string[] = [];
  const read = (file: string, make: () => string): string => {
    const path = join(dir, file);
    if (existsSync(path)) {
      const value = readFileSync(path, 'utf8').trim();
      if (value.length > 0) return value;
    }
    const value = make();
    writeFileSync(path, `${value}\n`, { mode: 0o600 });
    chmodSync(path, 0o600);
    created.push(file);
    return value;
  };
  return {
    webhookSecret: read(DEV_SECRET_FILE, () => `whsec_${randomBytes(24).toString('base64url')}`),
    adminToken: read(ADMIN_TOKEN_FILE, () => randomBytes(24).toString('base64url')),
    created,
  };
}
