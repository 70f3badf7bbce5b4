export {
  type ArchiveSource,
  LOCAL_DATABASE,
  type ResolveArchiveOptions,
  resolveArchive,
} from './archive-source.js';
export {
  type EmbeddedPostgres,
  type EmbeddedPostgresOptions,
  startEmbeddedPostgres,
} from './embedded-postgres.js';
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
