#!/usr/bin/env node
import type { Server } from 'node:http';
import {
  httpServerOptions,
  loadDashboardConfig,
  loadOrExit,
  whenSupervisorGone,
} from '@groq-webhooks/config';
import { closeRedis, createRedis, FailedEvents, waitForRedis } from '@groq-webhooks/queue';
import { createLogger, flushAndExit } from '@groq-webhooks/telemetry';
import { serve } from '@hono/node-server';
import { createApp } from './app.js';
import { openDashboardHistory } from './history.js';

/** Past this, a shutdown still waiting on connections or Redis is cut short. */
const SHUTDOWN_DEADLINE_MS = 10_000;

// Refuses to start without ADMIN_TOKEN: one line naming the variable, exit 78.
const config = loadOrExit(() => loadDashboardConfig(process.env));
const logger = createLogger({ service: 'dashboard', level: config.logLevel });
const client = createRedis(config, 'admin', 'groq-webhooks-dashboard');
const events = new FailedEvents({ client, settings: config });
const history =
  config.archiveDatabaseUrl === undefined
    ? undefined
    : openDashboardHistory({
        databaseUrl: config.archiveDatabaseUrl,
        client,
        queues: events.queues,
        settings: config,
      });
const app = createApp({
  history,
  events,
  adminToken: config.adminToken,
  isRedisReady: () => client.status === 'ready',
  waitForRedis: (timeoutMs) => waitForRedis(client, timeoutMs),
  logger,
});

const server = serve(
  {
    fetch: app.fetch,
    port: config.port,
    hostname: config.host,
    // Slow clients are cut off with a 408, as on the ingest.
    serverOptions: httpServerOptions(config),
  },
  (info) => {
    logger.info(
      {
        url: `http://${config.host}:${info.port}/`,
        queue: config.queueName,
        shards: config.queueShards,
        history: history === undefined ? 'off' : 'on',
      },
      'dashboard listening',
    );
  },
) as Server;
server.maxConnections = config.maxConnections;

server.on('error', (error) => {
  logger.fatal({ err: error }, 'dashboard could not listen');
  flushAndExit(logger, 1);
});

let stopping = false;

async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'dashboard shutting down');
  setTimeout(() => {
    logger.error({ deadlineMs: SHUTDOWN_DEADLINE_MS }, 'shutdown deadline passed: exiting now');
    flushAndExit(logger, 1);
  }, SHUTDOWN_DEADLINE_MS).unref();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  await closed;
  await events.close().catch((error: unknown) => logger.warn({ err: error }, 'queue close'));
  await history?.close().catch(() => {});
  await closeRedis(client);
  logger.info('dashboard stopped');
  flushAndExit(logger, 0);
}

process.on('SIGTERM', (signal) => void shutdown(signal));
process.on('SIGINT', (signal) => void shutdown(signal));
// Started by `pnpm start`: stops with its runner, however the runner ended.
whenSupervisorGone(process.env, () => void shutdown('SIGTERM'));
