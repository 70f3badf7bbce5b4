export {
  type Envelope,
  type EnvelopeResult,
  MAX_EVENT_ID_LENGTH,
  MAX_EVENT_TYPE_LENGTH,
  parseEnvelope,
} from './envelope.js';
export {
  EVENT_TYPES,
  type EventPayload,
  type EventType,
  eventSchemas,
  type GroqEvent,
  isEventType,
  payloadProblem,
} from './events.js';
export {
  defineHandlers,
  type EventLogger,
  type Handler,
  type HandlerContext,
  type HandlerMap,
  NonRetryableError,
} from './handlers.js';
