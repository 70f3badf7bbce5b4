import { computeSignature, SIGNATURE_HEADER, TIMESTAMP_HEADER } from '@groq-webhooks/signature';
import fc from 'fast-check';
import { SECRET } from './stack.js';

/** The ingest's body limit in the fuzz scenario: small, so sizes around it are cheap. */
export const FUZZ_MAX_BODY_BYTES = 4096;
/** The ingest's default `MAX_JSON_DEPTH`: bodies nested deeper are refused with 400. */
const MAX_JSON_DEPTH = 64;
const TOLERANCE_SECONDS = 300;
const KNOWN_TYPES = ['resource.created', 'resource.updated', 'resource.deleted'] as const;

/** How the body is built; materialised at send time (ids get a unique suffix then). */
type BodyRecipe =
  | {
      kind: 'envelope';
      id: string | number | null | undefined;
      type: string | number | undefined;
      /** Raw JSON text of `data` (or undefined: field left out). */
      data: string | undefined;
      created: string | number | undefined;
      /** Raw JSON text of extra top-level members, e.g. `"__proto__":{…}`. */
      extra: string[];
      /** Pad the body to exactly this many bytes when it is shorter. */
      padTo: number | undefined;
    }
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'json'; value: unknown };

type SignatureRecipe =
  | 'valid'
  | 'v1'
  | 'list'
  | 'duplicated'
  | 'uppercase'
  | 'wrong-secret'
  | 'other-timestamp'
  | 'truncated'
  | 'extended'
  | 'non-hex'
  | 'multibyte'
  | 'empty'
  | 'missing'
  | { random: string };

type TimestampRecipe =
  | { kind: 'now' }
  | { kind: 'offset'; seconds: number }
  | { kind: 'text'; make: (now: number) => string; maybeValid: boolean }
  | { kind: 'missing' }
  | { kind: 'duplicated' };

/** One generated request, before materialisation. */
export interface FuzzRecipe {
  body: BodyRecipe;
  signature: SignatureRecipe;
  timestamp: TimestampRecipe;
  chunked: boolean;
  chunkSize: number;
  headers: Record<string, string>;
}

/** A request ready to send, with what the contract says it must get. */
export interface FuzzRequest {
  headers: Record<string, string | string[]>;
  body: Buffer;
  chunked: boolean;
  chunkSize: number;
  /** Statuses the contract allows for it (more than one only where the oracle cannot tell). */
  expected: number[];
  /** Set when the request must be enqueued on a 200: the envelope's id. */
  eventId: string | undefined;
  /** Canonical JSON of the envelope as it should be stored in the job. */
  canonical: string | undefined;
  description: string;
}

const headerText = fc
  .string({ unit: 'binary-ascii', maxLength: 80 })
  .map((text) => text.replace(/[^\t\x20-\x7e]/g, ''));

const hostileString = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 10 }),
  fc.constantFrom(
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'hasOwnProperty',
    '123',
    '0',
    '-1',
    '1e3',
    'evt:1:2',
    '%3A',
    '%25%3A',
    'evt-',
    ' ',
    '\u0000',
    '\ud800',
    '😀',
    '../../etc/passwd',
    '{groq}',
    'groq:event:x',
  ),
);

const jsonString = (value: string) => JSON.stringify(value);

/** Raw JSON text of a hostile `data` value (some valid objects, some not objects at all). */
const dataText: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify({ value })) },
  fc.constant('{}'),
  fc.constant('{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}'),
  fc.constant('{"id":"res_1","object":"batch","attributes":{"__proto__":{"admin":true}}}'),
  fc.constant('{"attributes":"not a record"}'),
  fc
    .integer({ min: 1, max: 1500 })
    .map((depth) => `{"n":${'['.repeat(depth)}${']'.repeat(depth)}}`),
  fc.integer({ min: 1, max: 600 }).map((depth) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`),
  fc.integer({ min: 100, max: 5000 }).map((length) => `{"long":${jsonString('x'.repeat(length))}}`),
  hostileString.map((key) => `{${jsonString(key)}:${jsonString(key)}}`),
  fc.constantFrom('[]', 'null', '"text"', '1', 'true'),
  fc.constant(undefined),
);

const envelopeBody: fc.Arbitrary<BodyRecipe> = fc.record({
  kind: fc.constant('envelope' as const),
  id: fc.oneof(
    { weight: 6, arbitrary: hostileString },
    fc.integer({ min: 230, max: 260 }).map((length) => 'i'.repeat(length)),
    fc.constantFrom(0, 12, null, undefined, ''),
  ),
  type: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...KNOWN_TYPES) },
    hostileString,
    fc.constantFrom('', 7, undefined, 't'.repeat(256)),
  ),
  data: fc.oneof(
    { weight: 3, arbitrary: fc.constant('{"id":"res_1","object":"batch"}') },
    dataText,
  ),
  created: fc.oneof(
    { weight: 6, arbitrary: fc.constant('2026-11-28T10:00:00Z') },
    hostileString,
    fc.constantFrom(1764324000, undefined),
  ),
  extra: fc.array(
    fc.oneof(
      fc.constant('"__proto__":{"id":"from-proto","polluted":true}'),
      fc.constant('"constructor":{"prototype":{"polluted":true}}'),
      // A later duplicate key wins in JSON.parse: `{seq}` keeps this id unique too.
      fc.constant('"id":"second-id-wins~{seq}"'),
      hostileString.map((key) => `${jsonString(key)}:${jsonString(key)}`),
    ),
    { maxLength: 3 },
  ),
  padTo: fc.oneof(
    { weight: 4, arbitrary: fc.constant(undefined) },
    fc.constantFrom(
      FUZZ_MAX_BODY_BYTES - 1,
      FUZZ_MAX_BODY_BYTES,
      FUZZ_MAX_BODY_BYTES + 1,
      FUZZ_MAX_BODY_BYTES + 100,
      FUZZ_MAX_BODY_BYTES * 4,
      FUZZ_MAX_BODY_BYTES * 20,
    ),
  ),
});

const bodyRecipe: fc.Arbitrary<BodyRecipe> = fc.oneof(
  { weight: 6, arbitrary: envelopeBody },
  fc.record({
    kind: fc.constant('bytes' as const),
    bytes: fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      fc.uint8Array({ minLength: FUZZ_MAX_BODY_BYTES - 2, maxLength: FUZZ_MAX_BODY_BYTES + 2 }),
    ),
  }),
  fc.record({ kind: fc.constant('json' as const), value: fc.jsonValue({ maxDepth: 4 }) }),
);

const signatureRecipe: fc.Arbitrary<SignatureRecipe> = fc.oneof(
  { weight: 10, arbitrary: fc.constant('valid' as const) },
  fc.constantFrom(
    'v1' as const,
    'list' as const,
    'duplicated' as const,
    'uppercase' as const,
    'wrong-secret' as const,
    'other-timestamp' as const,
    'truncated' as const,
    'extended' as const,
    'non-hex' as const,
    'multibyte' as const,
    'empty' as const,
    'missing' as const,
  ),
  headerText.map((random) => ({ random })),
);

const timestampRecipe: fc.Arbitrary<TimestampRecipe> = fc.oneof(
  { weight: 10, arbitrary: fc.constant({ kind: 'now' as const }) },
  fc.integer({ min: -900, max: 900 }).map((seconds) => ({ kind: 'offset' as const, seconds })),
  fc.constantFrom<TimestampRecipe>(
    { kind: 'missing' },
    { kind: 'duplicated' },
    { kind: 'text', make: () => '', maybeValid: false },
    { kind: 'text', make: () => '0', maybeValid: false },
    { kind: 'text', make: () => '9'.repeat(12), maybeValid: false },
    { kind: 'text', make: (now) => `${now}000`, maybeValid: false },
    { kind: 'text', make: (now) => `+${now}`, maybeValid: false },
    { kind: 'text', make: (now) => `-${now}`, maybeValid: false },
    { kind: 'text', make: (now) => `${now}.0`, maybeValid: false },
    { kind: 'text', make: (now) => `${now}e0`, maybeValid: false },
    { kind: 'text', make: (now) => `0x${now.toString(16)}`, maybeValid: false },
    { kind: 'text', make: (now) => `${now}abc`, maybeValid: false },
    { kind: 'text', make: (now) => `0${now}`, maybeValid: true },
    // HTTP strips surrounding whitespace from header values: these may arrive valid.
    { kind: 'text', make: (now) => ` ${now} `, maybeValid: true },
    { kind: 'text', make: (now) => `${now}\t`, maybeValid: true },
  ),
  headerText.map((text) => ({ kind: 'text' as const, make: () => text, maybeValid: false })),
);

const extraHeaders = fc.dictionary(
  fc.constantFrom(
    'content-type',
    'x-groq-event-id',
    'x-request-id',
    'user-agent',
    'accept-encoding',
    'x-forwarded-for',
    'content-encoding',
  ),
  headerText,
  { maxKeys: 3 },
);

/** Arbitrary fuzz requests (recipes). */
export const fuzzRecipe: fc.Arbitrary<FuzzRecipe> = fc.record({
  body: bodyRecipe,
  signature: signatureRecipe,
  timestamp: timestampRecipe,
  chunked: fc.boolean(),
  chunkSize: fc.integer({ min: 1, max: 8192 }),
  headers: extraHeaders,
});

/**
 * Turns a recipe into bytes and headers at send time, and computes what the contract allows:
 * size → headers/timestamp/signature → JSON → envelope, exactly the order SPEC §4 fixes.
 */
export function materialise(recipe: FuzzRecipe, nowSeconds: number, seq: number): FuzzRequest {
  const { text: bodyText, bytes } = bodyBytes(recipe.body, seq);
  const body = Buffer.from(bytes ?? Buffer.from(bodyText ?? '', 'utf8'));
  const headers: Record<string, string | string[]> = { ...recipe.headers };
  // A lying Content-Length would leave the request hanging by the client's own doing: never sent.
  delete headers['content-length'];

  let timestampHeader: string | string[] | undefined;
  let timestampValid: boolean | 'maybe';
  const ts = recipe.timestamp;
  const now = String(nowSeconds);
  switch (ts.kind) {
    case 'now':
      timestampHeader = now;
      timestampValid = true;
      break;
    case 'offset': {
      timestampHeader = String(nowSeconds + ts.seconds);
      const distance = Math.abs(ts.seconds);
      // Seconds tick between here and the server's check: the boundary itself may go either way.
      timestampValid =
        distance < TOLERANCE_SECONDS - 1
          ? true
          : distance > TOLERANCE_SECONDS + 1
            ? false
            : 'maybe';
      break;
    }
    case 'text':
      timestampHeader = ts.make(nowSeconds);
      timestampValid = ts.maybeValid ? 'maybe' : false;
      break;
    case 'missing':
      timestampHeader = undefined;
      timestampValid = false;
      break;
    case 'duplicated':
      timestampHeader = [now, now];
      timestampValid = false;
      break;
  }
  if (timestampHeader !== undefined) headers[TIMESTAMP_HEADER] = timestampHeader;

  const signedTimestamp = Array.isArray(timestampHeader) ? now : (timestampHeader ?? now);
  const mac = computeSignature(SECRET, signedTimestamp, body);
  let signatureHeader: string | string[] | undefined;
  let signatureValid: boolean | 'maybe' = false;
  const sig = recipe.signature;
  if (typeof sig === 'object') {
    signatureHeader = sig.random;
  } else {
    switch (sig) {
      case 'valid':
        signatureHeader = mac;
        signatureValid = true;
        break;
      case 'v1':
        signatureHeader = `v1=${mac}`;
        signatureValid = true;
        break;
      case 'list':
        signatureHeader = `v1=${'0'.repeat(64)}, ${mac} deadbeef`;
        signatureValid = true;
        break;
      case 'duplicated':
        // Two header lines; joined with ", " they make a list that holds the right MAC.
        signatureHeader = ['0'.repeat(64), mac];
        signatureValid = 'maybe';
        break;
      case 'uppercase':
        signatureHeader = mac.toUpperCase();
        signatureValid = 'maybe';
        break;
      case 'wrong-secret':
        signatureHeader = computeSignature(`${SECRET}x`, signedTimestamp, body);
        break;
      case 'other-timestamp':
        // Signed over a different timestamp string than the header carries.
        signatureHeader = computeSignature(SECRET, `${signedTimestamp}0`, body);
        break;
      case 'truncated':
        signatureHeader = mac.slice(0, 63);
        break;
      case 'extended':
        signatureHeader = `${mac}0`;
        break;
      case 'non-hex':
        signatureHeader = 'z'.repeat(64);
        break;
      case 'multibyte':
        // UTF-8 bytes of multi-byte characters, sent as they are.
        signatureHeader = Buffer.from('é'.repeat(32), 'utf8').toString('latin1');
        break;
      case 'empty':
        signatureHeader = '';
        break;
      case 'missing':
        signatureHeader = undefined;
        break;
    }
  }
  if (signatureHeader !== undefined) headers[SIGNATURE_HEADER] = signatureHeader;

  const describe = `body=${recipe.body.kind}(${body.byteLength}B) sig=${typeof sig === 'object' ? 'random' : sig} ts=${ts.kind} chunked=${recipe.chunked}`;
  const result = (expected: number[], eventId?: string, canonical?: string): FuzzRequest => ({
    headers,
    body,
    chunked: recipe.chunked,
    chunkSize: recipe.chunkSize,
    expected,
    eventId,
    canonical,
    description: describe,
  });

  if (body.byteLength > FUZZ_MAX_BODY_BYTES) return result([413]);
  if (timestampValid === false || signatureValid === false) return result([401]);
  const authentic = timestampValid === true && signatureValid === true;
  const envelope = validEnvelope(bodyText);
  if (envelope === undefined) return result(authentic ? [400] : [400, 401]);
  return result(authentic ? [200] : [200, 401], envelope.id, envelope.canonical);
}

function bodyBytes(recipe: BodyRecipe, seq: number): { text?: string; bytes?: Uint8Array } {
  if (recipe.kind === 'bytes') {
    const text = Buffer.from(recipe.bytes).toString('utf8');
    // Only text that survives the round trip can be judged as JSON by the oracle.
    return Buffer.from(text, 'utf8').equals(Buffer.from(recipe.bytes))
      ? { text, bytes: recipe.bytes }
      : { bytes: recipe.bytes };
  }
  if (recipe.kind === 'json') return { text: JSON.stringify(recipe.value) ?? 'null' };
  const members: string[] = [];
  // Every id is made unique, so the queue can be compared with what was accepted.
  if (recipe.id !== undefined) {
    members.push(
      `"id":${JSON.stringify(typeof recipe.id === 'string' ? `${recipe.id}~${seq}` : recipe.id)}`,
    );
  }
  if (recipe.type !== undefined) members.push(`"type":${JSON.stringify(recipe.type)}`);
  if (recipe.data !== undefined) members.push(`"data":${recipe.data}`);
  if (recipe.created !== undefined) members.push(`"created":${JSON.stringify(recipe.created)}`);
  members.push(...recipe.extra.map((member) => member.replace('{seq}', String(seq))));
  let text = `{${members.join(',')}}`;
  if (recipe.padTo !== undefined) {
    const room = recipe.padTo - Buffer.byteLength(text) - `,"pad":""`.length;
    if (room >= 0) text = `{${[...members, `"pad":"${'p'.repeat(room)}"`].join(',')}}`;
  }
  return { text };
}

/** Nesting depth of a parsed JSON value (a scalar is 0, `{}` is 1), without recursion. */
function depthOf(value: unknown): number {
  let deepest = 0;
  const pending: [unknown, number][] = [[value, 0]];
  for (let item = pending.pop(); item !== undefined; item = pending.pop()) {
    const [node, depth] = item;
    if (typeof node !== 'object' || node === null) continue;
    deepest = Math.max(deepest, depth + 1);
    for (const child of Object.values(node)) pending.push([child, depth + 1]);
  }
  return deepest;
}

/**
 * The envelope rules of SPEC §3, written independently of the product: a JSON object with `id`
 * (1-255 code points, well-formed), `type` (1-255), `data` (an object) and `created` (string),
 * nested at most `MAX_JSON_DEPTH` levels deep.
 */
function validEnvelope(text: string | undefined): { id: string; canonical: string } | undefined {
  if (text === undefined || text.length === 0) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  if (depthOf(value) > MAX_JSON_DEPTH) return undefined;
  const record = value as Record<string, unknown>;
  const { id, type, data, created } = record;
  if (typeof id !== 'string' || id.length === 0 || [...id].length > 255) return undefined;
  // Ids become Redis keys (UTF-8): an unpaired surrogate would collide with U+FFFD (SPEC §5).
  if (/[\uD800-\uDFFF]/u.test(id)) return undefined;
  if (typeof type !== 'string' || type.length === 0 || [...type].length > 255) return undefined;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return undefined;
  if (typeof created !== 'string') return undefined;
  return { id, canonical: JSON.stringify(value) };
}
