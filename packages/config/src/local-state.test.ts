import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findRepoRoot, localStateDir } from './local-state.js';

const root = mkdtempSync(join(tmpdir(), 'groq-root-'));
writeFileSync(join(root, 'pnpm-workspace.yaml'), 'packages: []\n');
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('local state folder', () => {
  it('is .local at the repo root found from any folder below it', () => {
    expect(findRepoRoot(join(root, 'apps', 'x'))).toBe(root);
    expect(localStateDir({}, join(root, 'packages'))).toBe(join(root, '.local'));
  });

  it('is GROQ_LOCAL_DIR when set, relative to the start folder', () => {
    expect(localStateDir({ GROQ_LOCAL_DIR: '/var/groq' }, root)).toBe('/var/groq');
    expect(localStateDir({ GROQ_LOCAL_DIR: 'state' }, root)).toBe(join(root, 'state'));
  });

  it('is unknown outside a checkout', () => {
    expect(findRepoRoot(tmpdir())).toBeUndefined();
    expect(localStateDir({}, tmpdir())).toBeUndefined();
  });
});
