import type { Server } from 'node:http';
import { Server as NetServer } from 'node:net';
import { loadIngestConfig, loadOrExit } from '@groq-webhooks/config';
import {
  closeRedis,
  createRedis,
  EventProducer,
  isRedisReady,
  queuePathOrExit,
  storedTrace,
} from '@groq-webhooks/queue';
import { createLogger, flushAndExit, startTracing } from '@groq-webhooks/telemetry';
import { type Http2Bindings, type HttpBindings, serve } from '@hono/node-server';
import { createApp } from './app.js';
import { createIngestMetrics } from './metrics.js';

/** Past this, a shutdown that is still waiting on requests or Redis is cut short. */
const SHUTDOWN_DEADLINE_MS = 10_000;
/** While draining, keep-alive sockets that fall idle are closed this often. */
const IDLE_SWEEP_MS = 100;

const config = loadOrExit(() => loadIngestConfig(process.env));
const logger = createLogger({ service: 'ingest', level: config.logLevel });
// Tracing only when the standard OpenTelemetry variables ask for it; otherwise no SDK is loaded.
const tracing = await startTracing({ env: process.env, service: 'ingest', asyncContext: false });
// The queue path is chosen once: the fast one when it can be used, else BullMQ's stock one.
const path = await queuePathOrExit(config, (line) => logger.warn(line));
// Connects in the background: the process serves (503, /readyz 503) while Redis is away.
const client = createRedis(config, 'producer');
const producer = new EventProducer({ client, settings: config, path });
let stopping = false;
const app = createApp({
  producer,
  secrets: config.secrets,
  toleranceSeconds: config.toleranceSeconds,
  maxBodyBytes: config.maxBodyBytes,
  enqueueTimeoutMs: config.enqueueTimeoutMs,
  logger,
  metrics: createIngestMetrics(),
  // Draining: tell the load balancer to send no more, while in-flight requests finish.
  isReady: async () => !stopping && (await isRedisReady(client)),
  tracing: tracing && {
    tracer: tracing.tracer,
    storedTrace: (eventId) => storedTrace(client, config, eventId),
  },
});

/**
 * While draining, every answer says `Connection: close`: a keep-alive sender then opens a new
 * connection (refused, or to the next instance) instead of writing its next request into a
 * socket the idle sweep is about to close, which it would see as a reset after sending.
 */
function respond(
  request: Request,
  env: HttpBindings | Http2Bindings,
): Response | Promise<Response> {
  const response = app.fetch(request, env);
  return response instanceof Promise ? response.then(closeIfStopping) : closeIfStopping(response);
}

function closeIfStopping(response: Response): Response {
  if (stopping) response.headers.set('connection', 'close');
  return response;
}

const server = serve({ fetch: respond, port: config.port, hostname: config.host }, (info) => {
  logger.info(
    {
      url: `http://${config.host}:${info.port}`,
      keys: config.secrets.length,
      queue: config.queueName,
      queuePath: path.kind,
      toleranceSeconds: config.toleranceSeconds,
      maxBodyBytes: config.maxBodyBytes,
      enqueueTimeoutMs: config.enqueueTimeoutMs,
      tracing: tracing !== undefined,
    },
    'ingest listening',
  );
}) as Server;

// A client that asks before uploading (Expect: 100-continue) is told to go ahead only when its
// declared size fits; otherwise it gets the app's 413 without sending the body at all.
server.on('checkContinue', (req, res) => {
  const declared = Number(req.headers['content-length']);
  if (!(declared > config.maxBodyBytes)) res.writeContinue();
  server.emit('request', req, res);
});

server.on('error', (error) => {
  logger.fatal({ err: error }, 'ingest could not listen');
  flushAndExit(logger, 1);
});

async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (stopping) {
    logger.warn({ signal }, 'second signal: exiting now');
    flushAndExit(logger, 1);
    return;
  }
  stopping = true;
  logger.info({ signal }, 'shutting down: finishing in-flight requests');
  const deadline = setTimeout(() => {
    logger.error({ deadlineMs: SHUTDOWN_DEADLINE_MS }, 'shutdown deadline passed: exiting now');
    flushAndExit(logger, 1);
  }, SHUTDOWN_DEADLINE_MS);
  deadline.unref();

  // Stop listening and wait for every connection to go. Not http.Server#close: it also closes
  // idle keep-alive sockets at once, resetting any request a sender has just written into one.
  // Left open until the first sweep, such a request is answered, with `Connection: close`.
  // Keep-alive sockets only go once idle, so sweep them as in-flight requests finish.
  const closed = new Promise<void>((resolve) =>
    NetServer.prototype.close.call(server, () => resolve()),
  );
  const sweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
  await closed;
  clearInterval(sweep);
  await producer.close().catch((error: unknown) => logger.warn({ err: error }, 'queue close'));
  await closeRedis(client);
  // The spans still buffered go out before the process does.
  await tracing?.shutdown().catch((error: unknown) => logger.warn({ err: error }, 'tracing flush'));
  logger.info('ingest stopped');
  flushAndExit(logger, 0);
}

process.on('SIGTERM', (signal) => void shutdown(signal));
process.on('SIGINT', (signal) => void shutdown(signal));
