import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { HandlersModuleError, loadHandlers } from './handlers-module.js';

const fixtures = fileURLToPath(new URL('./__fixtures__/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'groq-handlers-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(path: string, text: string): string {
  const file = join(dir, path);
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, text);
  return file;
}

const PLAIN_MAP = `export default {
  'resource.created': async () => 'created',
  'resource.updated': async () => {},
  'resource.deleted': async () => {},
};
`;

async function failure(specifier: string, cwd = dir): Promise<string> {
  try {
    await loadHandlers(specifier, cwd);
  } catch (error) {
    expect(error).toBeInstanceOf(HandlersModuleError);
    return (error as Error).message;
  }
  throw new Error(`${specifier} loaded`);
}

describe('loadHandlers', () => {
  it('loads a plain-object .mjs module by absolute path', async () => {
    const handlers = await loadHandlers(join(fixtures, 'plain-handlers.mjs'), dir);
    expect(Object.keys(handlers).sort()).toEqual([
      'resource.created',
      'resource.deleted',
      'resource.updated',
    ]);
  });

  it('loads a TypeScript module through tsx, also outside any package', async () => {
    write(
      'ts-user/handlers.ts',
      `const handle = async (event: { type: string }): Promise<string> => \`ts:\${event.type}\`;
export default { 'resource.created': handle, 'resource.updated': handle, 'resource.deleted': handle };
`,
    );
    const handlers = await loadHandlers('./ts-user/handlers.ts', dir);
    expect(
      await handlers['resource.updated']({ type: 'resource.updated' } as never, {} as never),
    ).toBe('ts:resource.updated');
    const recording = await loadHandlers(join(fixtures, 'recording-handlers.ts'), dir);
    expect(typeof recording['resource.created']).toBe('function');
  });

  it('resolves a path relative to the working directory, with or without ./', async () => {
    write('user/handlers.mjs', PLAIN_MAP);
    for (const specifier of ['./user/handlers.mjs', 'user/handlers.mjs']) {
      const handlers = await loadHandlers(specifier, dir);
      expect(await handlers['resource.created']({} as never, {} as never)).toBe('created');
    }
  });

  it('resolves an ESM-only package by name from the working directory', async () => {
    write(
      'node_modules/@acme/hooks/package.json',
      JSON.stringify({
        name: '@acme/hooks',
        type: 'module',
        exports: { '.': { import: './h.js' } },
      }),
    );
    write('node_modules/@acme/hooks/h.js', PLAIN_MAP);
    const handlers = await loadHandlers('@acme/hooks', join(dir, 'user'));
    expect(typeof handlers['resource.deleted']).toBe('function');
  });

  it('resolves a CommonJS package by name', async () => {
    write(
      'node_modules/cjs-hooks/package.json',
      JSON.stringify({ name: 'cjs-hooks', main: 'i.js' }),
    );
    write(
      'node_modules/cjs-hooks/i.js',
      `const h = async () => {};
module.exports = { 'resource.created': h, 'resource.updated': h, 'resource.deleted': h };`,
    );
    const handlers = await loadHandlers('cjs-hooks', dir);
    expect(typeof handlers['resource.updated']).toBe('function');
  });

  it('refuses a module missing a handler, naming the type, in one line', async () => {
    const message = await failure(join(fixtures, 'missing-handler.mjs'));
    expect(message).toBe(
      `Invalid HANDLERS_MODULE ${join(fixtures, 'missing-handler.mjs')}: default export is missing a handler for resource.deleted`,
    );
  });

  it('refuses modules without a usable default export', async () => {
    write('named.mjs', `export const handlers = {};`);
    expect(await failure('./named.mjs')).toBe(
      'Invalid HANDLERS_MODULE ./named.mjs: the module has no default export',
    );
    write('string.mjs', `export default 'nope';`);
    expect(await failure('./string.mjs')).toMatch(/must be a handler map object, got string$/);
    write(
      'not-fn.mjs',
      `export default { 'resource.created': 1, 'resource.updated': 2, 'resource.deleted': 3 };`,
    );
    expect(await failure('./not-fn.mjs')).toMatch(
      /default export has a handler for resource.created that is not a function \(number\)$/,
    );
  });

  it('reports missing files, unknown packages and syntax errors in one line', async () => {
    for (const specifier of ['./nowhere.mjs', 'no-such-package-groq']) {
      const message = await failure(specifier);
      expect(message).toMatch(new RegExp(`^Invalid HANDLERS_MODULE ${specifier}: cannot be found`));
      expect(message).not.toContain('\n');
    }
    write('broken.mjs', 'export default {;\n');
    const message = await failure('./broken.mjs');
    expect(message).toMatch(/^Invalid HANDLERS_MODULE \.\/broken\.mjs: failed to load \(/);
    expect(message).not.toContain('\n');
  });

  it('gives up on a module that does not finish loading within the timeout, in one line', async () => {
    const file = join(fixtures, 'never-loads.mjs');
    const started = Date.now();
    let message = '';
    try {
      await loadHandlers(file, dir, { timeoutMs: 200 });
    } catch (error) {
      expect(error).toBeInstanceOf(HandlersModuleError);
      message = (error as Error).message;
    }
    expect(message).toBe(
      `Invalid HANDLERS_MODULE ${file}: did not finish loading within 200 ms (HANDLERS_LOAD_TIMEOUT_MS; a top-level await that never settles?)`,
    );
    expect(Date.now() - started).toBeLessThan(5000);
    // A module that loads in time is not held up by the timeout.
    const handlers = await loadHandlers(join(fixtures, 'plain-handlers.mjs'), dir, {
      timeoutMs: 10_000,
    });
    expect(typeof handlers['resource.created']).toBe('function');
  });
});
