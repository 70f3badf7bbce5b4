import type { CommonConfig } from '@groq-webhooks/config';
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';

/** An ioredis client: a single server or a Cluster. */
export type RedisClient = Redis | Cluster;

/**
 * What a connection is for:
 * - `producer`: the ingest's enqueue path: offline queue off and one try per command, so a
 *   Redis outage fails fast (503) instead of piling requests up in memory;
 * - `worker`: BullMQ workers, which need `maxRetriesPerRequest: null` for blocking commands;
 * - `admin`: the CLI and dashboard: fail fast, but wait for the first connect.
 */
export type ConnectionRole = 'producer' | 'worker' | 'admin';

/** Redis settings taken from the shared configuration. */
export type RedisSettings = Pick<CommonConfig, 'redisUrl' | 'redisClusterNodes'>;

/** Reconnect forever, backing off to at most 1 s between tries. */
function retryStrategy(times: number): number {
  return Math.min(50 * 2 ** Math.min(times, 5), 1000);
}

interface RoleOptions {
  enableOfflineQueue: boolean;
  maxRetriesPerRequest: number | null;
  connectTimeout: number;
}

/**
 * How long a Cluster command rides out CLUSTERDOWN and a lost master connection (a restarting
 * or failing-over master) before it fails. Workers wait about 30 s, as they wait for a single
 * Redis: a handler that finished must not fail its attempt because `markDone` hit a master
 * that was briefly away, or the event is handled again. The others keep ioredis's defaults
 * (16 tries, 100 ms apart), well inside the ingest's enqueue timeout.
 */
function clusterRetryOptions(
  role: ConnectionRole,
): Pick<ClusterOptions, 'maxRedirections' | 'retryDelayOnClusterDown' | 'retryDelayOnFailover'> {
  if (role !== 'worker') return {};
  return { maxRedirections: 100, retryDelayOnClusterDown: 300, retryDelayOnFailover: 300 };
}

function roleOptions(role: ConnectionRole): RoleOptions {
  switch (role) {
    case 'producer':
      return { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000 };
    case 'worker':
      return { enableOfflineQueue: true, maxRetriesPerRequest: null, connectTimeout: 5000 };
    case 'admin':
      return { enableOfflineQueue: true, maxRetriesPerRequest: 1, connectTimeout: 3000 };
  }
}

/** True when the settings name Redis Cluster nodes (`REDIS_CLUSTER_NODES`). */
export function usesCluster(settings: RedisSettings): boolean {
  return settings.redisClusterNodes !== undefined && settings.redisClusterNodes.length > 0;
}

/** Creates a Redis (or Redis Cluster) client for a role. Connects in the background. */
export function createRedis(
  settings: RedisSettings,
  role: ConnectionRole,
  connectionName = `groq-webhooks-${role}`,
): RedisClient {
  const { enableOfflineQueue, maxRetriesPerRequest, connectTimeout } = roleOptions(role);
  const nodes = settings.redisClusterNodes;
  if (nodes !== undefined && usesCluster(settings)) {
    const url = new URL(settings.redisUrl);
    const redisOptions: NonNullable<ClusterOptions['redisOptions']> & { replyMapping: 'legacy' } = {
      replyMapping: 'legacy',
      maxRetriesPerRequest,
      connectTimeout,
      connectionName,
    };
    if (url.password) redisOptions.password = decodeURIComponent(url.password);
    if (url.username) redisOptions.username = decodeURIComponent(url.username);
    if (url.protocol === 'rediss:') redisOptions.tls = {};
    return withErrorListener(
      new Cluster(
        nodes.map((node) => ({ host: node.host, port: node.port })),
        {
          redisOptions,
          enableOfflineQueue,
          clusterRetryStrategy: retryStrategy,
          slotsRefreshTimeout: 2000,
          ...clusterRetryOptions(role),
        },
      ),
    );
  }
  const options: RedisOptions & { replyMapping: 'legacy' } = {
    replyMapping: 'legacy',
    enableOfflineQueue,
    maxRetriesPerRequest,
    connectTimeout,
    connectionName,
    retryStrategy,
  };
  return withErrorListener(new Redis(settings.redisUrl, options));
}

/**
 * ioredis re-emits every failed reconnect as an 'error' event and prints it when nobody listens;
 * the outage itself is reported by the callers (503s, readiness, worker logs).
 */
function withErrorListener<T extends RedisClient>(client: T): T {
  client.on('error', () => {});
  return client;
}

/**
 * Resolves true once the client is connected, false when the timeout passes or the signal aborts
 * first. Never throws: callers turn `false` into one clear line, or into stopping quietly.
 */
export function waitForRedis(
  client: RedisClient,
  timeoutMs: number | undefined,
  signal?: AbortSignal,
): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true);
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ready: boolean): void => {
      clearTimeout(timer);
      client.off('ready', onReady);
      signal?.removeEventListener('abort', onAbort);
      resolve(ready);
    };
    const onReady = (): void => done(true);
    const onAbort = (): void => done(false);
    const timer = timeoutMs === undefined ? undefined : setTimeout(onAbort, timeoutMs);
    client.on('ready', onReady);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** True when the client answers PING within `timeoutMs`. Never throws. */
export async function isRedisReady(client: RedisClient, timeoutMs = 1000): Promise<boolean> {
  if (client.status !== 'ready') return false;
  let timer: NodeJS.Timeout | undefined;
  try {
    const reply = await Promise.race([
      client.ping(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('ping timeout')), timeoutMs);
      }),
    ]);
    return reply === 'PONG';
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** How long a close waits for Redis to answer QUIT before it just disconnects. */
const QUIT_TIMEOUT_MS = 2000;

/**
 * Closes a client: QUIT when connected (its replies come first), otherwise, or when Redis does
 * not answer it within {@link QUIT_TIMEOUT_MS}, just disconnect. Never throws.
 */
export async function closeRedis(client: RedisClient): Promise<void> {
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const quit = client.quit().then(
    () => true,
    () => false,
  );
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), QUIT_TIMEOUT_MS);
  });
  const quitted = await Promise.race([quit, timedOut]).finally(() => clearTimeout(timer));
  if (!quitted) client.disconnect();
}
