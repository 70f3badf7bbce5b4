/** Longest accepted event id, in characters (code points). */
export const MAX_EVENT_ID_LENGTH = 255;
/** Longest accepted event type name, in characters. */
export const MAX_EVENT_TYPE_LENGTH = 255;

/** The event envelope as sent (SPEC §3). Unknown extra fields are kept. */
export interface Envelope {
  id: string;
  type: string;
  data: Record<string, unknown>;
  created: string;
  [extra: string]: unknown;
}

/** In `u` mode a surrogate range only matches surrogates that are not part of a pair. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** Result of {@link parseEnvelope}: the envelope, or the first problem found. */
export type EnvelopeResult = { ok: true; envelope: Envelope } | { ok: false; problem: string };

/**
 * Validates an already-parsed JSON value as an envelope. Returns the same object (no copy), so
 * hostile keys such as `__proto__` are never assigned anywhere.
 */
export function parseEnvelope(value: unknown): EnvelopeResult {
  if (!isPlainObject(value)) return fail('body must be a JSON object');
  const { id, type, data, created } = value;
  if (id === undefined) return fail('id is required');
  if (typeof id !== 'string') return fail('id must be a string');
  if (id.length === 0) return fail('id must not be empty');
  if (codePointLength(id, MAX_EVENT_ID_LENGTH) > MAX_EVENT_ID_LENGTH) {
    return fail(`id must be at most ${MAX_EVENT_ID_LENGTH} characters`);
  }
  // JSON can carry an unpaired surrogate (`"\ud800"`), but Redis keys are UTF-8, where every
  // unpaired surrogate becomes U+FFFD: distinct ids would share one job and one idempotency key.
  if (LONE_SURROGATE.test(id)) return fail('id must be well-formed Unicode');
  if (type === undefined) return fail('type is required');
  if (typeof type !== 'string') return fail('type must be a string');
  if (type.length === 0) return fail('type must not be empty');
  if (codePointLength(type, MAX_EVENT_TYPE_LENGTH) > MAX_EVENT_TYPE_LENGTH) {
    return fail(`type must be at most ${MAX_EVENT_TYPE_LENGTH} characters`);
  }
  if (data === undefined) return fail('data is required');
  if (!isPlainObject(data)) return fail('data must be a JSON object');
  if (created === undefined) return fail('created is required');
  if (typeof created !== 'string') return fail('created must be a string');
  return { ok: true, envelope: value as Envelope };
}

function fail(problem: string): EnvelopeResult {
  return { ok: false, problem };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Counts code points, stopping early once past `limit` so huge strings cost nothing extra. */
function codePointLength(text: string, limit: number): number {
  if (text.length <= limit) return text.length; // code points ≤ UTF-16 units
  let count = 0;
  for (const _ of text) {
    count++;
    if (count > limit) break;
  }
  return count;
}
