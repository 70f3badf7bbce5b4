// A user handler module in plain JavaScript: a plain object default export, no helper.
import { createRedis } from '@groq-webhooks/queue';

let client;
function redis() {
  client ??= createRedis({ redisUrl: process.env.EFFECTS_REDIS_URL }, 'worker', 'test-plain');
  return client;
}

async function record(event, ctx) {
  ctx.logger.info({ note: 'plain mjs' }, 'plain handler ran');
  await redis().hincrby('effects', event.id, 1);
  await redis().hset('plain-mjs', event.id, `${event.type}@${ctx.attempt}`);
}

export default {
  'resource.created': record,
  'resource.updated': record,
  'resource.deleted': record,
};
