// `pnpm test` on a machine that lacks a prerequisite: one line naming it and how to install it,
// a non-zero exit, within seconds (it used to fail tests deep in the output instead).
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from './support/paths.js';

interface Run {
  code: number | null;
  output: string;
  seconds: number;
}

const dirs: string[] = [];

/**
 * A PATH with every command of this one but those named: a new directory of links to each
 * executable found on PATH, first one wins, as the shell would find it.
 */
function pathWithout(hidden: readonly string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'groq-path-'));
  dirs.push(dir);
  const linked = new Set<string>(hidden);
  for (const source of (process.env.PATH ?? '').split(delimiter)) {
    let names: string[];
    try {
      names = readdirSync(source);
    } catch {
      continue;
    }
    for (const name of names) {
      if (linked.has(name)) continue;
      linked.add(name);
      symlinkSync(join(source, name), join(dir, name));
    }
  }
  return dir;
}

function pnpmTest(env: Record<string, string | undefined>): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('pnpm', ['test'], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    // Never let a checker that let everything through start the whole suite from inside it.
    const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(guard);
      resolve({ code, output, seconds: (Date.now() - started) / 1000 });
    });
  });
}

describe('pnpm test checks its prerequisites first', () => {
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('without redis-server on PATH: one line naming it and how to install it, non-zero within 30 s', async () => {
    const run = await pnpmTest({ PATH: pathWithout(['redis-server']) });
    expect(run.code).not.toBe(0);
    expect(run.seconds).toBeLessThan(30);
    const lines = run.output.split('\n').filter((line) => line.includes('redis-server'));
    expect(lines).toEqual([
      'pnpm test needs redis-server on PATH (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis)',
    ]);
    // Nothing ran: the check comes before the build and the tests.
    expect(run.output).not.toContain('Tasks:');
  }, 60_000);

  it('names Chromium when it is not where the browser tests look', async () => {
    const nowhere = join(tmpdir(), 'groq-no-chromium', 'chromium');
    const run = await pnpmTest({ CHROMIUM_PATH: nowhere });
    expect(run.code).not.toBe(0);
    const lines = run.output.split('\n').filter((line) => line.startsWith('pnpm test needs'));
    expect(lines).toEqual([
      `pnpm test needs Chromium at ${nowhere} (Debian: apt-get install chromium; Ubuntu: apt-get install chromium-browser; or set CHROMIUM_PATH to a Chromium or Chrome binary)`,
    ]);
  }, 60_000);

  it('names everything missing at once, in one line', async () => {
    const run = await pnpmTest({
      PATH: pathWithout(['redis-server']),
      CHROMIUM_PATH: join(tmpdir(), 'groq-no-chromium', 'chromium'),
    });
    expect(run.code).not.toBe(0);
    const lines = run.output.split('\n').filter((line) => line.startsWith('pnpm test needs'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^pnpm test needs redis-server on PATH .*; and Chromium at /);
  }, 60_000);
});
