import { defineHandlers, NonRetryableError } from '@groq-webhooks/core';

/**
 * The demo switch of the example handlers: an event whose `data.demo_fail` is `true` fails, so
 * the quick start can show the failed-event path (`failed list`, the dashboard's Failed tab,
 * `failed retry`). It fails for good at once (non-retryable): a retryable failure would spend
 * the whole attempt budget first, about two minutes of backoff with the defaults.
 */
function failIfAsked(data: { [key: string]: unknown }): void {
  if (data.demo_fail === true) {
    throw new NonRetryableError('demo failure: the event asked for it with data.demo_fail');
  }
}

/**
 * The handlers a worker runs without `HANDLERS_MODULE`: each event is logged, nothing else; an
 * event with `data.demo_fail: true` fails (see {@link failIfAsked}).
 */
export const exampleHandlers = defineHandlers({
  'resource.created': (event, ctx) => {
    failIfAsked(event.data);
    ctx.logger.info({ resourceId: event.data.id, object: event.data.object }, 'Resource created');
  },
  'resource.updated': (event, ctx) => {
    failIfAsked(event.data);
    const changed = Object.keys(event.data.previous_attributes ?? {});
    ctx.logger.info({ resourceId: event.data.id, changed }, 'Resource updated');
  },
  'resource.deleted': (event, ctx) => {
    failIfAsked(event.data);
    ctx.logger.info({ resourceId: event.data.id }, 'Resource deleted');
  },
});
