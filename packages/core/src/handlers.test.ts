import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { defineHandlers, handlerOptions, NonRetryableError } from './handlers.js';

const require = createRequire(import.meta.url);

describe('defineHandlers', () => {
  it('returns the map it was given', () => {
    const map = {
      'resource.created': async () => {},
      'resource.updated': async () => {},
      'resource.deleted': async () => {},
    };
    expect(defineHandlers(map)).toBe(map);
  });

  it('keeps its options with the map; a plain object has the defaults', () => {
    const map = () => ({
      'resource.created': async () => {},
      'resource.updated': async () => {},
      'resource.deleted': async () => {},
    });
    expect(handlerOptions(map())).toEqual({ ordering: 'per-resource' });
    expect(handlerOptions(defineHandlers(map()))).toEqual({ ordering: 'per-resource' });
    const unordered = defineHandlers(map(), { ordering: 'none' });
    expect(handlerOptions(unordered)).toEqual({ ordering: 'none' });
    // Not a handler: the options are invisible to Object.keys and spreads.
    expect(Object.keys(unordered)).toEqual([
      'resource.created',
      'resource.updated',
      'resource.deleted',
    ]);
    expect(() => defineHandlers(map(), { ordering: 'sometimes' as 'none' })).toThrow(TypeError);
  });

  it('NonRetryableError is an Error with its own name', () => {
    const error = new NonRetryableError('bad payload', { cause: new Error('root') });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('NonRetryableError');
    expect(error.cause).toBeInstanceOf(Error);
  });

  it('a handler map missing a known type fails to compile', async () => {
    const tsc = join(dirname(require.resolve('typescript/package.json')), 'bin', 'tsc');
    const project = fileURLToPath(new URL('./__fixtures__/tsconfig.json', import.meta.url));
    const output = await new Promise<{ code: number | null; text: string }>((resolve) => {
      execFile(
        process.execPath,
        [tsc, '-p', project],
        { cwd: fileURLToPath(new URL('..', import.meta.url)) },
        (error, stdout, stderr) =>
          resolve({ code: error ? (error.code as number) : 0, text: stdout + stderr }),
      );
    });
    expect(output.code).not.toBe(0);
    expect(output.text).toContain('missing-handler.ts');
    expect(output.text).toMatch(/TS2741: Property '"resource\.deleted"' is missing/);
  }, 60_000);
});
