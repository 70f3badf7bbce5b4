export { createApp, RETRY_AFTER_SECONDS, WEBHOOK_PATH } from './app.js';
export { IngestError, REJECTIONS, type RejectionCode, type RejectionDetails } from './errors.js';
export { createIngestMetrics, type IngestMetrics } from './metrics.js';
export { type AppDeps, OUTCOME_CODES, type OutcomeCode, type Producer } from './types.js';
