import type { IncomingMessage } from 'node:http';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER } from '@groq-webhooks/signature';
import { IngestError } from './errors.js';

const EMPTY = new Uint8Array(0);
const DIGITS = /^[0-9]{1,16}$/;

/**
 * Reads a request's raw body, never holding more than `limit` bytes: a declared `Content-Length`
 * over the limit is refused before reading, and a body without one (chunked, or a stream) is
 * cancelled as soon as it passes the limit. Throws {@link IngestError} `payload_too_large`, or
 * `request_aborted` when the client stops sending midway.
 */
export async function readBody(request: Request, limit: number): Promise<Uint8Array> {
  const headers = request.headers;
  const declared = headers.get('content-length');
  // Transfer-Encoding wins over Content-Length (RFC 9112 §6.3); Node refuses both together anyway.
  if (declared !== null && DIGITS.test(declared) && !headers.has('transfer-encoding')) {
    if (Number(declared) > limit) throw new IngestError('payload_too_large');
    // Node's HTTP parser holds the body to the declared length, so this read is bounded, and
    // @hono/node-server serves it straight from the socket without building a web stream.
    const bytes = new Uint8Array(await readWhole(request));
    // In-process requests (app.request) are not held to their header: check what arrived.
    if (bytes.byteLength > limit) throw new IngestError('payload_too_large');
    return bytes;
  }
  if (request.body === null) return EMPTY;
  return readStream(request.body, limit);
}

async function readWhole(request: Request): Promise<ArrayBuffer> {
  try {
    return await request.arrayBuffer();
  } catch (error) {
    throw new IngestError('request_aborted', {}, { cause: error });
  }
}

async function readStream(stream: ReadableStream<Uint8Array>, limit: number): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    let chunk: Awaited<ReturnType<typeof reader.read>>;
    try {
      chunk = await reader.read();
    } catch (error) {
      throw new IngestError('request_aborted', {}, { cause: error });
    }
    if (chunk.done) break;
    size += chunk.value.byteLength;
    if (size > limit) {
      // Stop reading: the adapter drains or drops the rest of the upload after the 413.
      reader.cancel().catch(() => {});
      throw new IngestError('payload_too_large');
    }
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
 * same limits and errors without the Web `Request` wrapping and its copies (docs/performance.md).
 * When the body is over the limit reading stops; the adapter drains or drops the rest.
 */
export function readIncoming(
  incoming: IncomingMessage,
  headers: WebhookHeaders,
  limit: number,
): Promise<Uint8Array> {
  const declared = headers.contentLength;
  if (
    declared !== undefined &&
    headers.transferEncoding === undefined &&
    DIGITS.test(declared) &&
    Number(declared) > limit
  ) {
    return Promise.reject(new IngestError('payload_too_large'));
  }
  if (incoming.readableEnded) return Promise.resolve(EMPTY);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > limit) {
        cleanup();
        incoming.pause();
        reject(new IngestError('payload_too_large'));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(new IngestError('request_aborted', {}, { cause: error }));
    };
    const onClose = () => {
      // 'close' before 'end': the client went away midway.
      cleanup();
      reject(new IngestError('request_aborted'));
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
