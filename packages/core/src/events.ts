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

/**
 * Where each known type carries the id of the resource it is about (its resource key, SPEC §6
 * per-resource ordering): `data.id` for the `resource.*` types. A type absent here carries none.
 */
const RESOURCE_KEYS: { readonly [T in EventType]?: (data: EventPayload<T>) => unknown } = {
  'resource.created': (data) => data.id,
  'resource.updated': (data) => data.id,
  'resource.deleted': (data) => data.id,
};

/** The resource an event of a known type is about, or undefined when it names none. */
export function resourceKeyOf<T extends EventType>(
  type: T,
  data: EventPayload<T>,
): string | undefined {
  const key = (RESOURCE_KEYS[type] as ((data: EventPayload<T>) => unknown) | undefined)?.(data);
  return typeof key === 'string' && key.length > 0 ? key : undefined;
}

/**
 * An event's `created` as milliseconds since the epoch, to order events about one resource:
 * ISO-8601 text, or epoch seconds or milliseconds as digits (a value under 10^11 is seconds).
 * Undefined when it is neither: such an event is never judged stale.
 */
export function createdMillis(created: string): number | undefined {
  if (/^[0-9]{1,16}$/.test(created)) {
    const value = Number(created);
    return value < 1e11 ? value * 1000 : value;
  }
  const parsed = Date.parse(created);
  return Number.isNaN(parsed) ? undefined : parsed;
}
