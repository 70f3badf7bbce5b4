import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureLocalSecrets } from './local-state.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('ensureLocalSecrets', () => {
  it('makes a whsec_ secret and an admin token once, private to the user, and keeps them', () => {
    const parent = mkdtempSync(join(tmpdir(), 'groq-state-'));
    dirs.push(parent);
    const dir = join(parent, '.local');
    const first = ensureLocalSecrets(dir);
    expect(first.webhookSecret).toMatch(/^whsec_[A-Za-z0-9_-]{32}$/);
    expect(first.adminToken.length).toBeGreaterThanOrEqual(16);
    expect(first.created).toEqual(['dev-secret', 'admin-token']);
    expect(statSync(join(dir, 'dev-secret')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, 'dev-secret'), 'utf8').trim()).toBe(first.webhookSecret);
    const second = ensureLocalSecrets(dir);
    expect(second).toEqual({ ...first, created: [] });
  });
});
