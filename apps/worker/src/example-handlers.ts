import { defineHandlers } from '@groq-webhooks/core';

/** The handlers a worker runs without `HANDLERS_MODULE`: each event is logged, nothing else. */
export const exampleHandlers = defineHandlers({
  'resource.created': (event, ctx) => {
    ctx.logger.info({ resourceId: event.data.id, object: event.data.object }, 'Resource created');
  },
  'resource.updated': (event, ctx) => {
    const changed = Object.keys(event.data.previous_attributes ?? {});
    ctx.logger.info({ resourceId: event.data.id, changed }, 'Resource updated');
  },
  'resource.deleted': (event, ctx) => {
    ctx.logger.info({ resourceId: event.data.id }, 'Resource deleted');
  },
});
