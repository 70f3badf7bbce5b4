export { ConfigError, type IngestSettings } from '@groq-webhooks/config';
export { createApp, RETRY_AFTER_SECONDS, WEBHOOK_PATH } from './app.js';
export { BodyBudget, SMALL_BODY_BYTES } from './body-budget.js';
export {
  CLIENT_ERROR_KINDS,
  type ClientErrorKind,
  type ClientErrorOptions,
  watchClientErrors,
} from './client-errors.js';
export { type CreateIngestOptions, createIngest, type Ingest } from './create-ingest.js';
export { IngestError, REJECTIONS, type RejectionCode, type RejectionDetails } from './errors.js';
export { DEFAULT_MAX_JSON_DEPTH, jsonNestedDeeperThan } from './json-depth.js';
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
