export { checkoutHandlersModule } from './handlers-module.js';
export { ensureLocalSecrets, type LocalSecrets } from './local-state.js';
export {
  findOnPath,
  NO_REDIS_MESSAGE,
  NoRedisError,
  type RedisSource,
  redisAnswers,
  resolveRedis,
} from './redis-source.js';
export {
  type ChildSpec,
  type OutputMode,
  Supervisor,
  type SupervisorOptions,
} from './supervisor.js';
