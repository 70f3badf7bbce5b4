import { describe, expect, it } from 'vitest';
import { type EventJobData, jobDataJson } from './queues.js';

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
    for (const data of [plain, traced, replayed, { ...replayed, trace: { traceparent: 'p' } }]) {
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
