import { type Server, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '@groq-webhooks/telemetry';

/** Kinds of requests Node's HTTP server refuses before they reach the app. */
export const CLIENT_ERROR_KINDS = [
  /** Headers or the whole request not received in time (`HEADERS_TIMEOUT_MS`, `REQUEST_TIMEOUT_MS`). */
  'request_timeout',
  /** Headers over Node's size limit (16 KiB). */
  'headers_too_large',
  /** Not valid HTTP/1.1: bad request line or header, conflicting lengths (smuggling attempts). */
  'malformed',
  /** The connection failed under the parser (reset, broken pipe): nothing to answer. */
  'connection_error',
] as const;

/** One of {@link CLIENT_ERROR_KINDS}. */
export type ClientErrorKind = (typeof CLIENT_ERROR_KINDS)[number];

/** Where the counts go: the ingest metrics fit. */
export interface ClientErrorCounter {
  countClientError(kind: ClientErrorKind): void;
}

/** Options of {@link watchClientErrors}. */
export interface ClientErrorOptions {
  metrics: ClientErrorCounter;
  logger: Logger;
  /** At most one log line per kind this often; the ones left out are counted in the next. */
  logIntervalMs?: number;
  /** Clock in milliseconds, injectable for tests. */
  now?: () => number;
}

const DEFAULT_LOG_INTERVAL_MS = 10_000;

/**
 * Classifies a `clientError` by its code, with the status Node answers it with by default (none
 * for a broken connection).
 */
export function classifyClientError(code: string | undefined): {
  kind: ClientErrorKind;
  status: number | undefined;
} {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return { kind: 'request_timeout', status: 408 };
  if (code === 'HPE_HEADER_OVERFLOW') return { kind: 'headers_too_large', status: 431 };
  if (code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW') return { kind: 'malformed', status: 413 };
  if (code?.startsWith('HPE_')) return { kind: 'malformed', status: 400 };
  return { kind: 'connection_error', status: undefined };
}

/**
 * Counts and logs the requests Node's HTTP parser refuses, or its timeouts cut off, before the
 * app sees them: otherwise they vanish without a trace. Answers them as Node does by default
 * (400, 408, 413 or 431 and `Connection: close`, only when no response of ours has started on
 * that socket, then the socket is destroyed). Log lines are rate-limited per kind and name the
 * error code and peer, never the request bytes (the error's `rawPacket` holds its headers,
 * signature included).
 */
export function watchClientErrors(server: Server, options: ClientErrorOptions): void {
  const { metrics, logger } = options;
  const interval = options.logIntervalMs ?? DEFAULT_LOG_INTERVAL_MS;
  const now = options.now ?? Date.now;
  const lastLogged = new Map<ClientErrorKind, number>();
  const suppressed = new Map<ClientErrorKind, number>();
  // The response in progress on each socket, so an answer is never written into one of ours.
  const responses = new WeakMap<Socket, ServerResponse>();
  server.on('request', (req, res: ServerResponse) => {
    responses.set(req.socket, res);
  });

  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    const { kind, status } = classifyClientError(error.code);
    metrics.countClientError(kind);
    // Read before destroying: a destroyed socket no longer knows its peer.
    const remoteAddress = socket.remoteAddress;
    const response = responses.get(socket);
    const ours = response?.headersSent === true && !response.writableFinished;
    if (status !== undefined && socket.writable && !ours) {
      socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\n\r\n`);
    }
    socket.destroy();

    const at = now();
    const last = lastLogged.get(kind);
    if (last !== undefined && at - last < interval) {
      suppressed.set(kind, (suppressed.get(kind) ?? 0) + 1);
      return;
    }
    lastLogged.set(kind, at);
    const left = suppressed.get(kind) ?? 0;
    suppressed.set(kind, 0);
    logger[kind === 'connection_error' ? 'debug' : 'warn'](
      {
        kind,
        errorCode: error.code,
        status,
        remoteAddress,
        suppressed: left,
      },
      'request refused by the HTTP server',
    );
  });
}
