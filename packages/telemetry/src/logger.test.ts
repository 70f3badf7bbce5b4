import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, destination };
}

describe('createLogger', () => {
  it('redacts secrets, signatures and authorization headers', () => {
    const { lines, destination } = capture();
    const logger = createLogger({ service: 'test', destination });
    logger.info(
      {
        secret: 'whsec_one',
        config: { secrets: ['whsec_two'], adminToken: 'tok' },
        headers: { authorization: 'Bearer abc', 'x-groq-signature': 'deadbeef', 'x-other': 'kept' },
        req: { headers: { authorization: 'Basic xyz' } },
        eventId: 'evt_1',
      },
      'hello',
    );
    const text = JSON.stringify(lines);
    for (const leaked of [
      'whsec_one',
      'whsec_two',
      'tok"',
      'Bearer abc',
      'deadbeef',
      'Basic xyz',
    ]) {
      expect(text).not.toContain(leaked);
    }
    expect(lines[0]).toMatchObject({
      service: 'test',
      level: 'info',
      eventId: 'evt_1',
      msg: 'hello',
    });
    expect(text).toContain('kept');
  });
});

describe('createLogger time', () => {
  it('writes an ISO-8601 time on every line', () => {
    const { lines, destination } = capture();
    const logger = createLogger({ service: 'test', destination });
    const before = Date.now();
    logger.info('one');
    logger.info('two');
    const after = Date.now();
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      expect(typeof line.time).toBe('string');
      const time = Date.parse(line.time as string);
      expect(new Date(time).toISOString()).toBe(line.time);
      expect(time).toBeGreaterThanOrEqual(before);
      expect(time).toBeLessThanOrEqual(after);
    }
  });
});

describe('createLogger nested redaction', () => {
  it('censors secret keys one level down in any object, errors included, without touching them', () => {
    const { lines, destination } = capture();
    const logger = createLogger({ service: 'test', destination });
    const db = { host: 'db.local', password: 'pw-123' };
    const err = Object.assign(new Error('boom'), { token: 'tok-456' });
    const headers = ['x'];
    logger.error({ db, err, headers, client: { signature: 'sig-789', secrets: ['s1'] } }, 'failed');
    logger.child({ upstream: { authorization: 'Bearer child-abc' } }).info('bound');
    const text = JSON.stringify(lines);
    for (const leaked of ['pw-123', 'tok-456', 'sig-789', 's1', 'child-abc']) {
      expect(text).not.toContain(leaked);
    }
    expect(lines[0]).toMatchObject({
      db: { host: 'db.local', password: '[redacted]' },
      err: { message: 'boom', token: '[redacted]' },
      client: { signature: '[redacted]', secrets: '[redacted]' },
      headers: ['x'],
    });
    expect((lines[0]?.err as { stack?: string } | undefined)?.stack).toContain('boom');
    expect(lines[1]).toMatchObject({ upstream: { authorization: '[redacted]' }, msg: 'bound' });
    // The caller's objects are left as they were.
    expect(db.password).toBe('pw-123');
    expect(err.token).toBe('tok-456');
  });
});
