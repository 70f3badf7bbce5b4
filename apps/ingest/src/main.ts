#!/usr/bin/env node
import { createServer, type Server } from 'node:http';
import { Server as NetServer } from 'node:net';
import {
  httpServerOptions,
  ingestConfigWarnings,
  loadIngestConfig,
  loadOrExit,
  whenSupervisorGone,
} from '@groq-webhooks/config';
import { queuePathOrExit } from '@groq-webhooks/queue';
import {
  createLogger,
  flushAndExit,
  metricsListener,
  startTracing,
} from '@groq-webhooks/telemetry';
import { type Http2Bindings, type HttpBindings, serve } from '@hono/node-server';
import { createApp } from './app.js';
import { watchClientErrors } from './client-errors.js';
import { openIngest } from './create-ingest.js';

/** Past this, a shutdown that is still waiting on requests or Redis is cut short. */
const SHUTDOWN_DEADLINE_MS = 10_000;
/** While draining, keep-alive sockets that fall idle are closed this often. */
const IDLE_SWEEP_MS = 100;

const config = loadOrExit(() => loadIngestConfig(process.env));
const logger = createLogger({ service: 'ingest', level: config.logLevel });
for (const warning of ingestConfigWarnings(config)) logger.warn(warning);
// Tracing only when the standard OpenTelemetry variables ask for it; otherwise no SDK is loaded.
const tracing = await startTracing({ env: process.env, service: 'ingest', asyncContext: false });
// The queue path is chosen once: the fast one when it can be used, else BullMQ's stock one.
const path = await queuePathOrExit(config, (line) => logger.warn(line));
// The same wiring as createIngest(). Redis connects in the background: the process serves
// (503, /readyz 503) while Redis is away.
const ingest = openIngest(config, logger, path, tracing);
const { metrics } = ingest.deps;
let stopping = false;
const app = createApp({
  ...ingest.deps,
  // Draining: tell the load balancer to send no more, while in-flight requests finish.
  isReady: async () => !stopping && (await ingest.isReady()),
  // With a metrics port of its own, the public port does not tell the world about the process.
  metricsRoute: config.metricsPort === undefined,
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

const server = serve(
  {
    fetch: respond,
    port: config.port,
    hostname: config.host,
    // Slow clients are cut off: 408 past the headers or the whole-request timeout.
    serverOptions: httpServerOptions(config),
  },
  (info) => {
    logger.info(
      {
        url: `http://${config.host}:${info.port}`,
        keys: config.secrets.length,
        queue: config.queueName,
        queuePath: path.kind,
        history: config.archiveDatabaseUrl !== undefined,
        toleranceSeconds: config.toleranceSeconds,
        maxBodyBytes: config.maxBodyBytes,
        enqueueTimeoutMs: config.enqueueTimeoutMs,
        tracing: tracing !== undefined,
        requestTimeoutMs: config.requestTimeoutMs,
        maxConnections: config.maxConnections,
        maxInflightBodyBytes: config.maxInflightBodyBytes,
        metrics:
          config.metricsPort === undefined
            ? 'on this port'
            : `http://${config.metricsHost}:${config.metricsPort}/metrics`,
      },
      'ingest listening',
    );
  },
) as Server;
server.maxConnections = config.maxConnections;
watchClientErrors(server, { metrics, logger });

// Metrics on a port of their own (usually loopback or a private network), when configured.
let metricsServer: Server | undefined;
if (config.metricsPort !== undefined) {
  const port = config.metricsPort;
  metricsServer = createServer(metricsListener(metrics.registry));
  metricsServer.once('error', (error) => {
    logger.fatal({ err: error }, `ingest could not listen on METRICS_PORT ${port}`);
    flushAndExit(logger, 1);
  });
  metricsServer.listen(port, config.metricsHost);
}

// A client that asks before uploading (Expect: 100-continue) is told to go ahead only when its
// declared size fits, under MAX_BODY_BYTES and in the in-flight body budget now; otherwise it
// gets the app's 413 or 503 without sending the body at all. (Should the budget free up in
// between, the app reads the body anyway: a client sends it after its own wait for the 100.)
const { bodyBudget } = ingest.deps;
server.on('checkContinue', (req, res) => {
  const declared = Number(req.headers['content-length']);
  const full = declared > 0 && bodyBudget !== undefined && !bodyBudget.fits(declared, declared);
  if (!(declared > config.maxBodyBytes) && !full) res.writeContinue();
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
  metricsServer?.close();
  await ingest.close();
  logger.info('ingest stopped');
  flushAndExit(logger, 0);
}

process.on('SIGTERM', (signal) => void shutdown(signal));
process.on('SIGINT', (signal) => void shutdown(signal));
// Started by `pnpm start`: stops with its runner, however the runner ended.
whenSupervisorGone(process.env, () => void shutdown('SIGTERM'));
