// Your handlers. `pnpm start` and `pnpm worker` run this module when HANDLERS_MODULE is not set,
// and the worker image built by the Dockerfile carries it with this package's dependencies.
// Edit it freely; add what it needs with `pnpm --filter @groq-webhooks/handlers add <package>`.
// `.ts` runs as is (the worker loads it through tsx); `pnpm typecheck` checks it.
import { defineHandlers } from '@groq-webhooks/core';

export default defineHandlers({
  'resource.created': async (event, ctx) => {
    // ctx.eventId is the event's id: key your own writes on it to make them idempotent.
    ctx.logger.info({ resource: event.data.id, kind: event.data.object }, 'created');
  },
  'resource.updated': async (event, ctx) => {
    const fields = Object.keys(event.data.previous_attributes ?? {});
    ctx.logger.info({ resource: event.data.id, fields }, 'updated');
  },
  'resource.deleted': async (event, ctx) => {
    ctx.logger.info({ resource: event.data.id }, 'deleted');
  },
});
