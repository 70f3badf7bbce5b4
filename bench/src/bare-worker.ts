import { createRedis, Worker } from '@groq-webhooks/queue';

// The worker baseline: a bare BullMQ Worker with a trivial processor, no idempotency, no logging.
const env = process.env;
const connection = createRedis(
  { redisUrl: env.REDIS_URL ?? '', redisClusterNodes: undefined },
  'worker',
);
const worker = new Worker(env.QUEUE_NAME ?? 'groq-events', async () => {}, {
  connection,
  prefix: env.QUEUE_PREFIX ?? '{groq}',
  concurrency: Number(env.WORKER_CONCURRENCY ?? 10),
});
worker.on('ready', () => process.stdout.write('bare worker ready\n'));
process.once('SIGTERM', () => {
  void worker.close().then(() => process.exit(0));
});
