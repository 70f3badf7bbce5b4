import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '@groq-webhooks/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { Supervisor } from './supervisor.js';

const dir = mkdtempSync(join(tmpdir(), 'groq-supervisor-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function script(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, body);
  return path;
}

const chatty = script(
  'chatty.mjs',
  `console.log(JSON.stringify({ level: 'info', service: 'chatty', msg: 'hello' }));
console.error('plain line');
process.on('SIGTERM', () => { console.log(JSON.stringify({ level: 'info', msg: 'bye' })); process.exit(0); });
setInterval(() => {}, 1000);`,
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

  it('keeps the stream JSON when not on a terminal and reports a child that dies on its own', async () => {
    const lines: string[] = [];
    const exits: Array<[string, number | string]> = [];
    const supervisor = new Supervisor({
      mode: 'json',
      write: (line) => lines.push(line),
      pretty: (line) => line,
      onUnexpectedExit: (name, code) => exits.push([name, code]),
    });
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
