import { z } from 'zod';

/**
 * The one source of truth for known event types: type name → payload (`data`) schema.
 * Payloads are loose (senders add fields) and every field is optional, so a valid envelope is
 * never refused at ingest for its payload; a field present with the wrong type fails the job.
 */
export const eventSchemas = {
  'resource.created': z.looseObject({
    /** Id of the resource that was created. */
    id: z.string().optional(),
    /** Kind of resource, e.g. `batch`, `file`, `model`. */
    object: z.string().optional(),
    /** The resource's attributes at creation. */
    attributes: z.record(z.string(), z.unknown()).optional(),
  }),
  'resource.updated': z.looseObject({
    id: z.string().optional(),
    object: z.string().optional(),
    attributes: z.record(z.string(), z.unknown()).optional(),
    /** Values of the changed attributes before the update. */
    previous_attributes: z.record(z.string(), z.unknown()).optional(),
  }),
  'resource.deleted': z.looseObject({
    id: z.string().optional(),
    object: z.string().optional(),
  }),
} as const;

/** Known event type names, in a stable order. */
export const EVENT_TYPES = Object.keys(eventSchemas) as EventType[];

/** A known event type name. */
export type EventType = keyof typeof eventSchemas;

/** The `data` payload of a known event type. */
export type EventPayload<T extends EventType> = z.infer<(typeof eventSchemas)[T]>;

/** A verified event of a known type, as handlers receive it. */
export interface GroqEvent<T extends EventType = EventType> {
  id: string;
  type: T;
  data: EventPayload<T>;
  created: string;
}

/** True when `type` names a known event type. */
export function isEventType(type: string): type is EventType {
  return Object.hasOwn(eventSchemas, type);
}

/** Checks a known type's payload; returns the first problem, or undefined when it fits. */
export function payloadProblem(type: EventType, data: unknown): string | undefined {
  const result = eventSchemas[type].safeParse(data);
  if (result.success) return undefined;
  const issue = result.error.issues[0];
  if (issue === undefined) return 'data is invalid';
  const path = ['data', ...issue.path.map(String)].join('.');
  return `${path}: ${issue.message}`;
}
