// Your handlers. `pnpm start` and `pnpm worker` run this module when HANDLERS_MODULE is not set,
// and the worker image built by the Dockerfile carries it with this package's dependencies.
// Edit it freely; add what it needs with `pnpm --filter @groq-webhooks/handlers add <package>`.
// `.ts` runs as is (the worker loads it through tsx); `pnpm typecheck` checks it.
import { defineHandlers, NonRetryableError } from '@groq-webhooks/core';

/**
 * The quick start's demo switch (README): an event whose data says `"demo_fail": true` fails for
 * good at once, to show what an operator sees (`failed list`, the dashboard's Failed tab, `failed
 * retry`). Delete it, and its calls, once these handlers do real work.
 */
function failIfAsked(data: { [key: string]: unknown }): void {
  if (data.demo_fail === true) {
    throw new NonRetryableError('demo failure: the event asked for it with data.demo_fail');
  }
}

export default defineHandlers({
  'resource.created': async (event, ctx) => {
    failIfAsked(event.data);
    // ctx.eventId is the event's id: key your own writes on it to make them idempotent.
    ctx.logger.info({ resource: event.data.id, kind: event.data.object }, 'created');
  },
  'resource.updated': async (event, ctx) => {
    failIfAsked(event.data);
    const fields = Object.keys(event.data.previous_attributes ?? {});
    ctx.logger.info({ resource: event.data.id, fields }, 'updated');
  },
  'resource.deleted': async (event, ctx) => {
    failIfAsked(event.data);
    ctx.logger.info({ resource: event.data.id }, 'deleted');
  },
});
