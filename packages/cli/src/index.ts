export { REDIS_CONNECT_TIMEOUT_MS, redisLocation } from './admin.js';
export {
  HISTORY_OFF,
  historyDatabaseUrl,
  renderEventHistory,
  renderEventList,
} from './events.js';
export { CliError, type CliIo, EXIT, type OutputStream } from './io.js';
export { createProgram, run } from './program.js';
export { readDevSecret } from './secret.js';
export {
  buildEnvelope,
  eventIds,
  runTrigger,
  summaryLine,
  type TriggerOptions,
  type TriggerSummary,
} from './trigger.js';
