// Handlers that keep every event and the resources it describes in PostgreSQL.
// Run them with the worker bin: HANDLERS_MODULE=./handlers.ts groq-webhooks-worker
import {
  defineHandlers,
  type GroqEvent,
  type HandlerContext,
  NonRetryableError,
} from '@groq-webhooks/core';
import pg from 'pg';

// One pool per worker process. DATABASE_URL is this project's own variable.
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });

/** Changes the `resources` table for one event, inside the event's transaction. */
type Apply = (db: pg.PoolClient, resourceId: string) => Promise<unknown>;

/**
 * Stores the event and applies its change in one transaction, once per event id. Delivery to
 * handlers is at least once (a worker may crash after the handler and before the event is marked
 * done), so a second run must find the event's row and change nothing.
 */
async function once(event: GroqEvent, ctx: HandlerContext, apply: Apply): Promise<void> {
  const resourceId = event.data.id;
  // Retrying cannot fix a payload: fail the event at once, it stays inspectable.
  if (!resourceId) throw new NonRetryableError(`${event.type} event without data.id`);
  const db = await pool.connect();
  try {
    await db.query('BEGIN');
    const stored = await db.query(
      `INSERT INTO groq_events (event_id, type, resource_id, payload, created)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (event_id) DO NOTHING`,
      [ctx.eventId, event.type, resourceId, event.data, event.created],
    );
    const first = stored.rowCount === 1;
    if (first) await apply(db, resourceId);
    await db.query('COMMIT');
    ctx.logger.info(
      { resourceId, applied: first },
      first ? 'Event stored' : 'Event already stored',
    );
  } catch (error) {
    await db.query('ROLLBACK').catch(() => {});
    throw error; // retried with backoff
  } finally {
    db.release();
  }
}

export default defineHandlers({
  'resource.created': (event, ctx) =>
    once(event, ctx, (db, id) =>
      db.query(
        `INSERT INTO resources (id, object, attributes, last_event_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO NOTHING`,
        [id, event.data.object ?? null, event.data.attributes ?? {}, ctx.eventId],
      ),
    ),
  'resource.updated': (event, ctx) =>
    once(event, ctx, (db, id) =>
      db.query(
        `INSERT INTO resources (id, object, attributes, last_event_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET attributes = resources.attributes || EXCLUDED.attributes,
           last_event_id = EXCLUDED.last_event_id, updated_at = now()`,
        [id, event.data.object ?? null, event.data.attributes ?? {}, ctx.eventId],
      ),
    ),
  'resource.deleted': (event, ctx) =>
    once(event, ctx, (db, id) => db.query('DELETE FROM resources WHERE id = $1', [id])),
});
