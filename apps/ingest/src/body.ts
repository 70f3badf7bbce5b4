import type { IncomingMessage } from 'node:http';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER } from '@groq-webhooks/signature';
import type { BodyBudget } from './body-budget.js';
import { IngestError } from './errors.js';

const EMPTY = new Uint8Array(0);
const DIGITS = /^[0-9]{1,16}$/;

/** Takes nothing and always has room: for callers without an in-flight body budget. */
const UNBOUNDED = { take: () => true, give: () => {} } as const satisfies Pick<
  BodyBudget,
  'take' | 'give'
>;

/** The part of {@link BodyBudget} the body readers use. */
export type BodyReservation = Pick<BodyBudget, 'take' | 'give'>;

/**
 * Reads a request's raw body, never holding more than `limit` bytes: a declared `Content-Length`
 * over the limit is refused before reading, and a body without one (chunked, or a stream) is
 * cancelled as soon as it passes the limit. Throws {@link IngestError} `payload_too_large`, or
 * `request_aborted` when the client stops sending midway.
 *
 * With a `budget`, the body's bytes are reserved in it before they are read: a declared length
 * at once, a chunked body chunk by chunk; when they do not fit it throws `overloaded`. On success
 * the returned body's `byteLength` stays reserved, for the caller to give back when the request
 * is done; on failure nothing stays reserved.
 */
export async function readBody(
  request: Request,
  limit: number,
  budget: BodyReservation = UNBOUNDED,
): Promise<Uint8Array> {
  const headers = request.headers;
  const declared = headers.get('content-length');
  // Transfer-Encoding wins over Content-Length (RFC 9112 §6.3); Node refuses both together anyway.
  if (declared !== null && DIGITS.test(declared) && !headers.has('transfer-encoding')) {
    const length = Number(declared);
    if (length > limit) throw new IngestError('payload_too_large');
    if (!budget.take(length, length)) throw new IngestError('overloaded');
    let bytes: Uint8Array;
    try {
      // Node's HTTP parser holds the body to the declared length, so this read is bounded, and
      // @hono/node-server serves it straight from the socket without building a web stream.
      bytes = new Uint8Array(await readWhole(request));
    } finally {
      budget.give(length);
    }
    // In-process requests (app.request) are not held to their header: check what arrived.
    if (bytes.byteLength > limit) throw new IngestError('payload_too_large');
    if (!budget.take(bytes.byteLength, bytes.byteLength)) throw new IngestError('overloaded');
    return bytes;
  }
  if (request.body === null) return EMPTY;
  return readStream(request.body, limit, budget);
}

async function readWhole(request: Request): Promise<ArrayBuffer> {
  try {
    return await request.arrayBuffer();
  } catch (error) {
    throw new IngestError('request_aborted', {}, { cause: error });
  }
}

async function readStream(
  stream: ReadableStream<Uint8Array>,
  limit: number,
  budget: BodyReservation,
): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const fail = (error: IngestError): never => {
    // Stop reading: the adapter drains or drops the rest of the upload after the answer.
    reader.cancel().catch(() => {});
    budget.give(size);
    throw error;
  };
  for (;;) {
    let chunk: Awaited<ReturnType<typeof reader.read>>;
    try {
      chunk = await reader.read();
    } catch (error) {
      budget.give(size);
      throw new IngestError('request_aborted', {}, { cause: error });
    }
    if (chunk.done) break;
    const bytes = chunk.value.byteLength;
    if (size + bytes > limit) fail(new IngestError('payload_too_large'));
    if (!budget.take(bytes, size + bytes)) fail(new IngestError('overloaded'));
    size += bytes;
    chunks.push(chunk.value);
  }
  if (chunks.length === 1 && chunks[0] !== undefined) return chunks[0];
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

/** The request headers the webhook route reads. */
export interface WebhookHeaders {
  signature: string | undefined;
  timestamp: string | undefined;
  contentLength: string | undefined;
  transferEncoding: string | undefined;
}

/**
 * Picks the webhook's headers out of Node's raw header list in one pass (Node builds
 * `incoming.headers` on first read, which costs about a microsecond a request for every header
 * sent). As `incoming.headers` would give them: names case-insensitive, a repeated header joined
 * with ", " (Node's parser refuses a repeated Content-Length; the first would be kept).
 */
export function webhookHeaders(raw: readonly string[]): WebhookHeaders {
  const found: WebhookHeaders = {
    signature: undefined,
    timestamp: undefined,
    contentLength: undefined,
    transferEncoding: undefined,
  };
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    // Only names of the right length are lowercased and compared.
    if (name.length === SIGNATURE_HEADER.length) {
      const lower = name.toLowerCase();
      if (lower === SIGNATURE_HEADER) found.signature = joined(found.signature, raw[i + 1]);
      else if (lower === TIMESTAMP_HEADER) found.timestamp = joined(found.timestamp, raw[i + 1]);
    } else if (name.length === 14) {
      if (found.contentLength === undefined && name.toLowerCase() === 'content-length') {
        found.contentLength = raw[i + 1];
      }
    } else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') {
      found.transferEncoding = joined(found.transferEncoding, raw[i + 1]);
    }
  }
  return found;
}

function joined(previous: string | undefined, value: string | undefined): string | undefined {
  return previous === undefined ? value : `${previous}, ${value}`;
}

/**
 * {@link readBody} straight from Node's request stream, as served by `@hono/node-server`: the
 * same limits, reservations and errors without the Web `Request` wrapping and its copies
 * (docs/performance.md). When the body is over the limit or the budget, reading stops; the
 * adapter drains or drops the rest.
 */
export function readIncoming(
  incoming: IncomingMessage,
  headers: WebhookHeaders,
  limit: number,
  budget: BodyReservation = UNBOUNDED,
): Promise<Uint8Array> {
  const declared = headers.contentLength;
  // Reserved up front: the declared length (Node's parser holds the body to it), else chunk by
  // chunk as a chunked body arrives.
  let reserved = 0;
  if (declared !== undefined && headers.transferEncoding === undefined && DIGITS.test(declared)) {
    const length = Number(declared);
    if (length > limit) return Promise.reject(new IngestError('payload_too_large'));
    if (!budget.take(length, length)) return Promise.reject(new IngestError('overloaded'));
    reserved = length;
  }
  if (incoming.readableEnded) {
    budget.give(reserved);
    return Promise.resolve(EMPTY);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (error: IngestError) => {
      cleanup();
      budget.give(reserved);
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > limit) {
        incoming.pause();
        fail(new IngestError('payload_too_large'));
        return;
      }
      if (size > reserved) {
        if (!budget.take(size - reserved, size)) {
          incoming.pause();
          fail(new IngestError('overloaded'));
          return;
        }
        reserved = size;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      // What stays reserved is what the caller holds: the body itself.
      budget.give(reserved - size);
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      fail(new IngestError('request_aborted', {}, { cause: error }));
    };
    const onClose = () => {
      // 'close' before 'end': the client went away midway.
      fail(new IngestError('request_aborted'));
    };
    const cleanup = () => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
      incoming.off('close', onClose);
    };
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
    incoming.on('close', onClose);
  });
}
