import type { ServerOptions } from 'node:http';
import type { HttpLimitsConfig } from './config.js';

/** How often Node checks open requests against their timeouts, at most (its default is 30 s). */
const CHECK_INTERVAL_MS = 1000;

/**
 * Node `http.createServer` options that hold clients to the configured timeouts: a client gets
 * `headersTimeoutMs` for its headers and `requestTimeoutMs` for the whole request, body included,
 * then a 408 and a closed connection. Checked every second (Node's default, 30 s, would let a
 * slow client hold its connection and buffers that much longer). The connection cap is not a
 * creation option: set `server.maxConnections = limits.maxConnections`.
 */
export function httpServerOptions(limits: HttpLimitsConfig): ServerOptions {
  return {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    connectionsCheckingInterval: Math.min(CHECK_INTERVAL_MS, limits.headersTimeoutMs),
  };
}
