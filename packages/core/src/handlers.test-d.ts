// Compile-time tests: `pnpm test` type-checks this file, so every @ts-expect-error below must
// really be an error, and every other line must compile.
import { defineHandlers, type HandlerMap } from './handlers.js';

const complete = defineHandlers({
  'resource.created': async (event) => {
    const id: string | undefined = event.data.id;
    const attributes: Record<string, unknown> | undefined = event.data.attributes;
    void id;
    void attributes;
  },
  'resource.updated': async (event, ctx) => {
    const previous: Record<string, unknown> | undefined = event.data.previous_attributes;
    const type: 'resource.updated' = event.type;
    const attempt: number = ctx.attempt;
    const resource: string | undefined = ctx.resourceKey;
    void resource;
    ctx.signal.throwIfAborted();
    ctx.logger.info({ previous, type, attempt }, 'updated');
  },
  'resource.deleted': (event) => {
    // @ts-expect-error deleted events carry no previous_attributes field in their type
    event.data.previous_attributes.x;
  },
});
void complete;

// @ts-expect-error a handler map missing a known type does not compile
const missing: HandlerMap = {
  'resource.created': async () => {},
  'resource.updated': async () => {},
};
void missing;

defineHandlers(
  // @ts-expect-error defineHandlers refuses a map without resource.deleted
  {
    'resource.created': async () => {},
    'resource.updated': async () => {},
  },
);

defineHandlers({
  'resource.created': async () => {},
  'resource.updated': async () => {},
  'resource.deleted': async () => {},
  // @ts-expect-error a misspelt type is not a known event type
  'resource.craeted': async () => {},
});

defineHandlers({
  'resource.created': async () => {},
  // @ts-expect-error a handler's event type is checked against its key
  'resource.updated': async (event: { type: 'resource.deleted' }) => {
    void event;
  },
  'resource.deleted': async () => {},
});

defineHandlers(complete, { ordering: 'none' });
// @ts-expect-error ordering is per-resource or none
defineHandlers(complete, { ordering: 'fifo' });
