// The ingest's public surface: a webhook receiver to mount in your own Hono server.
export { ConfigError, type IngestSettings } from '@groq-webhooks/config';
export { RETRY_AFTER_SECONDS } from './app.js';
export { type CreateIngestOptions, createIngest, type Ingest } from './create-ingest.js';
export type { IngestEnv } from './types.js';
