import { describe, expect, it } from 'vitest';
import { writeLine } from './line.js';
import { createLogger } from './logger.js';

/** A destination keeping raw writes, and a logger on it whose clock stands still. */
function capture(level = 'info') {
  const writes: string[] = [];
  const logger = createLogger({
    service: 'test',
    level,
    destination: { write: (text: string) => writes.push(text) } as never,
  });
  return { writes, logger };
}

/** The line pino itself writes for the same call, with its time replaced by the other's. */
function samePinoLine(level: 'info' | 'warn', fields: Record<string, unknown>, msg: string) {
  const fast = capture();
  const slow = capture();
  writeLine(fast.logger.child({ shard: 'a"b' }), level, fields as never, msg);
  slow.logger.child({ shard: 'a"b' })[level](fields, msg);
  const time = /,"time":"[^"]*"/;
  const fastLine = fast.writes.join('');
  const slowLine = (slow.writes.join('') as string).replace(time, time.exec(fastLine)?.[0] ?? '');
  return { fastLine, slowLine };
}

describe('writeLine', () => {
  it('writes what pino writes: level, time, bindings, field order, escaping, newline', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ code: 'received', status: 200, durationMs: 1.234, eventId: 'evt_1', keyIndex: 0 }, 'ok'],
      [
        { eventId: 'q"\\\n\u0001é😀\u2028', type: 'resource.created', attempt: 2 },
        'Event "handled"',
      ],
      [{ skewSeconds: -301, ok: true, nan: Number.NaN, inf: Infinity, gone: undefined }, ''],
      [{}, 'no fields'],
      [{ 'k"ey': 'plain', é: 'x\u007f', long: 'y'.repeat(60) }, 'odd keys'],
    ];
    for (const [fields, msg] of cases) {
      const { fastLine, slowLine } = samePinoLine('info', fields, msg);
      expect(fastLine).toBe(slowLine);
      expect(fastLine.endsWith('}\n')).toBe(true);
      JSON.parse(fastLine);
    }
    const { fastLine, slowLine } = samePinoLine('warn', { code: 'invalid_signature' }, 'rejected');
    expect(fastLine).toBe(slowLine);
    expect(JSON.parse(fastLine).level).toBe('warn');
  });

  it('escapes a lone surrogate, which pino writes raw (it then reaches the log as U+FFFD)', () => {
    const { writes, logger } = capture();
    writeLine(logger, 'info', { type: 'a\ud800b', eventId: 'evt_\udfff' }, 'x');
    const line = writes.join('');
    expect(line).toContain('"type":"a\\ud800b","eventId":"evt_\\udfff"');
    expect(JSON.parse(line)).toMatchObject({ type: 'a\ud800b', eventId: 'evt_\udfff' });
  });

  it('writes nothing below the logger level', () => {
    const { writes, logger } = capture('warn');
    writeLine(logger, 'info', { eventId: 'evt_1' }, 'quiet');
    expect(writes).toEqual([]);
    writeLine(logger, 'error', { eventId: 'evt_1' }, 'loud');
    expect(writes).toHaveLength(1);
  });

  it('leaves a field pino would censor to pino', () => {
    const { writes, logger } = capture();
    writeLine(logger, 'info', { eventId: 'evt_1', secret: 'whsec_leak', token: 'tok_leak' }, 'x');
    expect(writes.join('')).not.toContain('leak');
    expect(JSON.parse(writes.join('')).eventId).toBe('evt_1');
  });
});
