-- Tables of the example handlers. Apply once: psql "$DATABASE_URL" -f schema.sql

-- One row per event, keyed by the event id: the handlers' idempotency record. A redelivered or
-- re-run event finds its row, and its effect is not applied twice.
CREATE TABLE IF NOT EXISTS groq_events (
  event_id    text PRIMARY KEY,
  type        text NOT NULL,
  resource_id text NOT NULL,
  payload     jsonb NOT NULL,
  created     text NOT NULL,
  stored_at   timestamptz NOT NULL DEFAULT now()
);

-- The resources as the events describe them: created, updated, deleted.
CREATE TABLE IF NOT EXISTS resources (
  id            text PRIMARY KEY,
  object        text,
  attributes    jsonb NOT NULL DEFAULT '{}',
  last_event_id text NOT NULL,
  updated_at    timestamptz NOT NULL DEFAULT now()
);
