export { ConfigError, type IngestSettings } from '@groq-webhooks/config';
export { createApp, RETRY_AFTER_SECONDS, WEBHOOK_PATH } from './app.js';
export { type CreateIngestOptions, createIngest, type Ingest } from './create-ingest.js';
export { IngestError, REJECTIONS, type RejectionCode, type RejectionDetails } from './errors.js';
export { createIngestMetrics, type IngestMetrics } from './metrics.js';
export {
  type AppDeps,
  type IngestEnv,
  OUTCOME_CODES,
  type OutcomeCode,
  type Producer,
  type WebhookDeps,
} from './types.js';
export { createWebhookApp } from './webhook.js';
