import { describe, expect, it } from 'vitest';
import { type EventJobData, jobDataJson, jobTurn } from './queues.js';

describe('jobDataJson', () => {
  const event = {
    id: 'evt_1',
    type: 'resource.created',
    data: { id: 'res_1', note: 'é"\\' },
    created: '2026-11-28T10:00:00Z',
  };

  it('lays the data out as JSON.stringify does, with and without a trace context', () => {
    const plain: EventJobData = { event, receivedAt: '2026-11-28T10:00:01.000Z', keyIndex: 1 };
    const traced: EventJobData = {
      ...plain,
      trace: {
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        tracestate: 'vendor=a"b',
      },
    };
    const replayed: EventJobData = { ...plain, replay: 'rpl_1' };
    const turned: EventJobData = { turn: jobTurn(event), ...plain };
    const unturned: EventJobData = { turn: undefined, ...plain };
    for (const data of [
      plain,
      traced,
      replayed,
      { ...replayed, trace: { traceparent: 'p' } },
      turned,
      unturned,
    ]) {
      expect(jobDataJson(data, JSON.stringify(event))).toBe(JSON.stringify(data));
    }
  });

  it('writes the event as the text it was parsed from', () => {
    const text = '{ "id":"evt_1", "type":"resource.created","data":{},"created":"x" }';
    const json = jobDataJson(
      { event, receivedAt: 't', keyIndex: 0, trace: { traceparent: 'p' } },
      text,
    );
    expect(json).toBe(
      `{"event":${text},"receivedAt":"t","keyIndex":0,"trace":{"traceparent":"p"}}`,
    );
  });
});

describe('jobTurn', () => {
  const event = (
    type: string,
    data: Record<string, unknown>,
    created = '2026-12-05T00:00:00Z',
  ) => ({
    id: 'evt_1',
    type,
    data,
    created,
  });

  it('is `<created ms>:<resource key>` for an event about a resource', () => {
    expect(jobTurn(event('resource.updated', { id: 'res_1' }))).toBe(
      `${Date.parse('2026-12-05T00:00:00Z')}:res_1`,
    );
    expect(jobTurn(event('resource.deleted', { id: 'res:2' }, '1764892800'))).toBe(
      '1764892800000:res:2',
    );
    // A created that is not a time: the turn never judges the event stale.
    expect(jobTurn(event('resource.created', { id: 'res_3' }, 'soon'))).toBe(':res_3');
  });

  it('is undefined when there is no resource, or its key is not plain JSON text', () => {
    expect(jobTurn(event('resource.updated', {}))).toBeUndefined();
    expect(jobTurn(event('resource.updated', { id: 42 }))).toBeUndefined();
    expect(jobTurn(event('unknown.type', { id: 'res_1' }))).toBeUndefined();
    for (const id of ['res_"q"', 'res_\\b', 'res_\n', 'res_\u0001']) {
      expect(jobTurn(event('resource.updated', { id })), id).toBeUndefined();
    }
    expect(jobTurn(event('resource.updated', { id: 'résumé_✓' }))).toMatch(/:résumé_✓$/);
  });
});
