import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '@groq-webhooks/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { Supervisor } from './supervisor.js';

const dir = mkdtempSync(join(tmpdir(), 'groq-supervisor-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A supervisor that keeps the stream JSON (not a terminal), collecting the lines it writes. */
function jsonSupervisor(
  onUnexpectedExit: (name: string, code: number | string) => void = () => {},
): { supervisor: Supervisor; lines: string[] } {
  const lines: string[] = [];
  const supervisor = new Supervisor({
    mode: 'json',
    write: (line) => lines.push(line),
    pretty: (line) => line,
    onUnexpectedExit,
  });
  return { supervisor, lines };
}

function script(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, body);
  return path;
}

// The scripts below install their SIGTERM handler before printing the line a test waits for:
// a signal that came between the two would find Node's default action and kill the child.
const chatty = script(
  'chatty.mjs',
  `process.on('SIGTERM', () => { console.log(JSON.stringify({ level: 'info', msg: 'bye' })); process.exit(0); });
setInterval(() => {}, 1000);
console.log(JSON.stringify({ level: 'info', service: 'chatty', msg: 'hello' }));
console.error('plain line');`,
);

describe('Supervisor', () => {
  it('prefixes and prettifies output on a terminal, and stops children with SIGTERM', async () => {
    const lines: string[] = [];
    const exits: string[] = [];
    const supervisor = new Supervisor({
      mode: 'pretty',
      write: (line) => lines.push(line),
      pretty: (line) => `PRETTY ${JSON.parse(line).msg}`,
      onUnexpectedExit: (name) => exits.push(name),
    });
    supervisor.start({ name: 'chatty', entry: chatty, env: process.env });
    await waitFor(
      () =>
        lines.some((line) => line.includes('plain line')) &&
        lines.some((line) => line.includes('hello')),
    );
    expect(lines.find((line) => line.includes('hello'))).toMatch(/\[chatty\].* PRETTY hello\n$/);
    expect(lines.find((line) => line.includes('plain line'))).toMatch(/\[chatty\].* plain line\n$/);
    await supervisor.stopAll(5000);
    expect(lines.some((line) => line.includes('PRETTY bye'))).toBe(true);
    expect(exits).toEqual([]);
  });

  it('shows every line a child writes while it shuts down before stopAll returns', async () => {
    const { supervisor, lines } = jsonSupervisor();
    supervisor.start({
      name: 'burst',
      entry: script(
        'burst.mjs',
        `const timer = setInterval(() => {}, 1000);
process.on('SIGTERM', () => {
  for (let i = 0; i < 5000; i++) console.log('line ' + i);
  clearInterval(timer);
});
console.log('ready');`,
      ),
      env: process.env,
    });
    await waitFor(() => lines.length === 1);
    await supervisor.stopAll(5000);
    expect(lines).toHaveLength(5001);
    expect(JSON.parse(lines.at(-1) ?? '')).toEqual({ service: 'burst', msg: 'line 4999' });
  });

  // A parent that, once asked to stop, exits at once and leaves a grandchild (sharing its pipes)
  // running `grandchildCode`. Returns the supervisor's lines and the grandchild's pid.
  async function stopParentOfGrandchild(grandchildCode: string) {
    const { supervisor, lines } = jsonSupervisor();
    supervisor.start({
      name: 'parent',
      entry: script(
        'parent.mjs',
        `import { spawn } from 'node:child_process';
const grandchild = spawn(process.execPath, ['-e', process.env.GRANDCHILD], {
  stdio: 'inherit',
  detached: true,
});
process.on('SIGTERM', () => process.exit(0));
setInterval(() => {}, 1000);
console.log(String(grandchild.pid));`,
      ),
      env: { ...process.env, GRANDCHILD: grandchildCode },
    });
    await waitFor(() => lines.length === 1);
    const grandchild = Number(JSON.parse(lines[0] ?? '').msg);
    try {
      await supervisor.stopAll(5000);
      return { lines: lines.map((line) => JSON.parse(line).msg), running: isRunning(grandchild) };
    } finally {
      if (isRunning(grandchild)) process.kill(grandchild, 'SIGKILL');
    }
  }

  it('waits for output still coming through a child’s pipes after it exited', async () => {
    const { lines } = await stopParentOfGrandchild(
      `setTimeout(() => console.log('late line'), 500);`,
    );
    expect(lines.at(-1)).toBe('late line');
  });

  it('does not wait forever for pipes a grandchild still holds open', async () => {
    const { running } = await stopParentOfGrandchild('setInterval(() => {}, 1000);');
    expect(running).toBe(true);
  });

  it('keeps the stream JSON when not on a terminal and reports a child that dies on its own', async () => {
    const exits: Array<[string, number | string]> = [];
    const { supervisor, lines } = jsonSupervisor((name, code) => exits.push([name, code]));
    supervisor.start({
      name: 'crashy',
      entry: script('crashy.mjs', `console.log('about to fail'); process.exit(3);`),
      env: process.env,
    });
    await waitFor(() => exits.length === 1);
    expect(exits).toEqual([['crashy', 3]]);
    expect(lines.map((line) => JSON.parse(line))).toEqual([
      { service: 'crashy', msg: 'about to fail' },
    ]);
    await supervisor.stopAll(1000);
  });
});
