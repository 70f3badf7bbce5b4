import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { TurnBufferedStdout } from './turn-buffered-stdout.js';

/** The built module (the test task builds first), for a child process that exits at once. */
const BUILT = fileURLToPath(new URL('../dist/turn-buffered-stdout.js', import.meta.url));

describe('TurnBufferedStdout', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  function file(): { fd: number; read: () => string } {
    const dir = mkdtempSync(join(tmpdir(), 'groq-log-'));
    dirs.push(dir);
    const path = join(dir, 'out.log');
    const fd = openSync(path, 'w');
    return {
      fd,
      read: () => {
        return readFileSync(path, 'utf8');
      },
    };
  }

  it('writes the lines of one turn together once the turn ends, in order', async () => {
    const { fd, read } = file();
    const out = new TurnBufferedStdout(fd);
    out.write('one\n');
    out.write('two\n');
    expect(read()).toBe('');
    await new Promise((resolve) => setImmediate(resolve));
    expect(read()).toBe('one\ntwo\n');
    out.write('three\n');
    await new Promise((resolve) => setImmediate(resolve));
    expect(read()).toBe('one\ntwo\nthree\n');
    closeSync(fd);
  });

  it('flush(cb) writes what is buffered before calling back', () => {
    const { fd, read } = file();
    const out = new TurnBufferedStdout(fd);
    out.write('now\n');
    let called = false;
    out.flush(() => {
      called = true;
    });
    expect(called).toBe(true);
    expect(read()).toBe('now\n');
    closeSync(fd);
  });

  it('writes what is buffered when the process exits right after logging', () => {
    const script = `import { TurnBufferedStdout } from ${JSON.stringify(BUILT)};
const out = new TurnBufferedStdout(1);
for (let i = 0; i < 1000; i++) out.write('line ' + i + '\\n');
process.exit(0);`;
    const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
    });
    const lines = output.trim().split('\n');
    expect(lines).toHaveLength(1000);
    expect(lines[999]).toBe('line 999');
  });

  it('writes everything, in order, through a pipe that fills up (partial writes, EAGAIN)', () => {
    // process.stdout makes fd 1 non-blocking; 4 MB in one turn overflow the 64 KB pipe buffer.
    const script = `import { TurnBufferedStdout } from ${JSON.stringify(BUILT)};
process.stdout;
const out = new TurnBufferedStdout(1);
const pad = 'é'.repeat(100);
for (let i = 0; i < 20000; i++) out.write('line ' + i + ' ' + pad + '\\n');
process.exit(0);`;
    const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    const lines = output.trim().split('\n');
    expect(lines).toHaveLength(20000);
    for (let i = 0; i < 20000; i += 997) expect(lines[i]).toBe(`line ${i} ${'é'.repeat(100)}`);
  });
});
