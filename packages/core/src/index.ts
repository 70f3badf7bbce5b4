export {
  type Envelope,
  type EnvelopeResult,
  MAX_EVENT_ID_LENGTH,
  MAX_EVENT_TYPE_LENGTH,
  parseEnvelope,
} from './envelope.js';
export {
  createdMillis,
  EVENT_TYPES,
  type EventPayload,
  type EventType,
  eventSchemas,
  type GroqEvent,
  isEventType,
  payloadProblem,
  resourceKeyOf,
} from './events.js';
export {
  defineHandlers,
  type EventLogger,
  HANDLER_OPTIONS,
  type Handler,
  type HandlerContext,
  type HandlerMap,
  type HandlerOptions,
  handlerOptions,
  NonRetryableError,
  ORDERINGS,
  type Ordering,
} from './handlers.js';
export { DEFAULT_MAX_JSON_DEPTH, jsonNestedDeeperThan } from './json-depth.js';
