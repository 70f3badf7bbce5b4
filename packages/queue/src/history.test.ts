import { startRedis, type TestRedis } from '@groq-webhooks/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeRedis, createRedis, type RedisClient, waitForRedis } from './connection.js';
import {
  decodeHistoryRecord,
  encodeHistoryRecord,
  type HistoryRecord,
  HistoryWriter,
  historyStreamKey,
  historyStreamKeys,
  MalformedHistoryRecord,
} from './history.js';
import { queueShards, shardOf } from './naming.js';

const records: HistoryRecord[] = [
  {
    kind: 'delivery',
    eventId: 'evt_1',
    type: 'resource.created',
    created: '2026-11-28T10:00:00Z',
    receivedAt: 1_796_000_000_123,
    keyIndex: 1,
    outcome: 'received',
    payload: '{"id":"evt_1", "type":"resource.created","data":{},"created":"2026-11-28T10:00:00Z"}',
  },
  {
    kind: 'delivery',
    eventId: 'evt_1',
    type: 'resource.created',
    created: '2026-11-28T10:00:00Z',
    receivedAt: 1_796_000_000_999,
    keyIndex: 0,
    outcome: 'duplicate',
  },
  {
    kind: 'attempt',
    eventId: 'evt_1',
    type: 'resource.created',
    attempt: 2,
    startedAt: 1_796_000_001_000,
    endedAt: 1_796_000_001_042,
    worker: 'groq-worker-7',
    outcome: 'retrying',
    error: 'boom',
    errorType: 'TypeError',
    replayId: 'rpl_abc',
  },
  { kind: 'replay', replayId: 'rpl_abc', filters: '{"type":"x"}', count: 12, requestedAt: 5 },
];

describe('history record format', () => {
  it('round-trips every kind, leaving optional fields out rather than empty', () => {
    for (const record of records)
      expect(decodeHistoryRecord(encodeHistoryRecord(record))).toEqual(record);
    expect(encodeHistoryRecord(records[1] as HistoryRecord)).not.toContain('payload');
    expect(encodeHistoryRecord(records[1] as HistoryRecord).slice(0, 4)).toEqual([
      'v',
      '1',
      'kind',
      'delivery',
    ]);
  });

  it('reports, never throws on, what does not follow the format', () => {
    for (const flat of [
      [],
      ['v', '2', 'kind', 'delivery'],
      ['v', '1', 'kind', 'gossip', 'id', 'x', 'type', 't'],
      ['v', '1', 'kind', 'delivery', 'id', 'x', 'type', 't', 'at', 'soon', 'outcome', 'received'],
      [
        'v',
        '1',
        'kind',
        'attempt',
        'id',
        'x',
        'type',
        't',
        'n',
        '1',
        'started',
        '1',
        'ended',
        '2',
        'outcome',
        'done',
      ],
      ['v', '1', 'kind', 'replay', 'count', '1', 'at', '1'],
    ]) {
      expect(decodeHistoryRecord(flat)).toBeInstanceOf(MalformedHistoryRecord);
    }
    // Fields it does not know are ignored (later versions may add some).
    const extra = [...encodeHistoryRecord(records[0] as HistoryRecord), 'traceId', 'abc'];
    expect(decodeHistoryRecord(extra)).toEqual(records[0]);
  });

  it('names one stream per shard, under the shard prefix (its hash tag)', () => {
    const settings = { queueName: 'groq-events', queuePrefix: '{groq}', queueShards: 3 };
    const keys = historyStreamKeys(settings);
    expect(keys).toHaveLength(3);
    queueShards(settings).forEach((shard, i) => {
      expect(keys[i]).toBe(`${shard.prefix}:${shard.name}:history`);
    });
    expect(historyStreamKeys({ ...settings, queueShards: 1 })).toEqual([
      '{groq}:groq-events:history',
    ]);
  });
});

describe('HistoryWriter against a real redis-server', () => {
  let redis: TestRedis;
  let client: RedisClient;
  beforeAll(async () => {
    redis = await startRedis();
    client = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'producer');
    await waitForRedis(client, 5000);
  });
  afterAll(async () => {
    if (client) await closeRedis(client);
    await redis?.cleanup();
  });

  it("appends each record to its event's shard stream (replays to shard 0), in order", async () => {
    const settings = { queueName: 'w', queuePrefix: '{w}', queueShards: 4 };
    const writer = new HistoryWriter({ client, settings });
    const more = Array.from({ length: 8 }, (_, i) => ({
      ...(records[1] as HistoryRecord),
      eventId: `evt_more_${i}`,
    }));
    await writer.append([...records, ...more]);
    const shards = queueShards(settings);
    let total = 0;
    for (const shard of shards) {
      const entries = await client.xrange(historyStreamKey(shard), '-', '+');
      total += entries.length;
      for (const [, fields] of entries) {
        const record = decodeHistoryRecord(fields);
        if (record instanceof MalformedHistoryRecord) throw record;
        const expected = record.kind === 'replay' ? 0 : shardOf(record.eventId, 4);
        expect(expected).toBe(shard.index);
      }
    }
    expect(total).toBe(records.length + more.length);
    const shard = shards[shardOf('evt_1', 4)];
    const ofEvent = (await client.xrange(historyStreamKey(shard as never), '-', '+'))
      .map(([, fields]) => decodeHistoryRecord(fields))
      .filter(
        (r) =>
          !(r instanceof MalformedHistoryRecord) && r.kind !== 'replay' && r.eventId === 'evt_1',
      );
    expect(ofEvent).toEqual(records.slice(0, 3));
  });
});
