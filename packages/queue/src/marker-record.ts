import type { RedisClient } from './connection.js';
import type { MarkerLayout, MarkerSettings } from './done-markers.js';

/**
 * Redis key of the done-markers' upgrade record (a hash, written once by the first worker of a
 * version that writes the compact layout): `since` (its start, Unix s), `shadowUntil` (until when
 * new markers also leave the previous layout's, for processes of the previous version that may
 * still run), `oldUntil` (until when markers of the previous layout may exist), and optionally
 * `layout` (`one-key` makes workers write the previous layout: the memory benchmark's switch).
 */
export const MARKER_RECORD_KEY = 'groq:done:upgrade';

/** How long a rolling upgrade may run beside the previous version's processes (s). */
export const ROLLOUT_WINDOW_SECONDS = 3600;

// Sets the record unless it is set, by Redis's clock. ARGV: the rollout window (s; 0 for a fresh
// install, where no marker of the previous layout exists), the TTL (s).
const OPEN_RECORD = `
local now = tonumber(redis.call('TIME')[1])
if redis.call('HEXISTS', KEYS[1], 'since') == 0 then
  local window = tonumber(ARGV[1])
  local oldUntil = now
  if window > 0 then oldUntil = now + window + tonumber(ARGV[2]) end
  redis.call('HSET', KEYS[1], 'since', now, 'shadowUntil', now + window, 'oldUntil', oldUntil)
end
return redis.call('HGETALL', KEYS[1])`;

/** The upgrade record's content. */
export interface MarkerRecord {
  readonly since: number;
  readonly shadowUntil: number;
  readonly oldUntil: number;
  readonly layout: MarkerLayout;
}

/**
 * A worker's marker settings, from the upgrade record, which the first worker of this version
 * writes. An install where none of `queueKeys` exists (each shard's `completed` and `failed`
 * sets: what a worker that handled events leaves) never ran a worker of the previous version:
 * nothing to shadow. Otherwise the first hour shadows.
 */
export async function openMarkerSettings(
  client: RedisClient,
  options: { ttlSeconds: number; queueKeys: readonly string[] },
): Promise<MarkerSettings> {
  // One key per call: on a Cluster the queue keys of several shards live in several slots.
  const existing = await Promise.all(options.queueKeys.map((key) => client.exists(key)));
  const fresh = existing.every((count) => count === 0);
  const reply = (await client.eval(
    OPEN_RECORD,
    1,
    MARKER_RECORD_KEY,
    fresh ? 0 : ROLLOUT_WINDOW_SECONDS,
    options.ttlSeconds,
  )) as string[];
  const record = parseRecord(reply);
  if (record === undefined) throw new Error('the done-marker upgrade record was not written');
  return { layout: record.layout, shadowUntil: record.shadowUntil };
}

/** The upgrade record, or undefined when no worker of this version has started yet. */
export async function readMarkerRecord(client: RedisClient): Promise<MarkerRecord | undefined> {
  const fields = await client.hgetall(MARKER_RECORD_KEY);
  return parseRecord(Object.entries(fields).flat());
}

function parseRecord(flat: readonly string[]): MarkerRecord | undefined {
  const fields = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(flat[i] as string, flat[i + 1] as string);
  const since = Number(fields.get('since'));
  if (!Number.isFinite(since)) return undefined;
  return {
    since,
    shadowUntil: Number(fields.get('shadowUntil') ?? 0) || 0,
    oldUntil: Number(fields.get('oldUntil') ?? since) || since,
    layout: fields.get('layout') === 'one-key' ? 'one-key' : 'buckets',
  };
}
