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
