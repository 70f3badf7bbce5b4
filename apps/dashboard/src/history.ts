import { HistoryStore, migrate, openHistoryPool, replayEvents } from '@groq-webhooks/archive';
import {
  type EventQueue,
  HistoryWriter,
  type QueueSettings,
  type RedisClient,
} from '@groq-webhooks/queue';
import type { DashboardHistory } from './events-api.js';

/** The dashboard's history: connects (and migrates) on first use, again after a failure. */
export function openDashboardHistory(deps: {
  databaseUrl: string;
  client: RedisClient;
  queues: readonly EventQueue[];
  settings: QueueSettings;
}): DashboardHistory & { close(): Promise<void> } {
  const pool = openHistoryPool(deps.databaseUrl, {
    max: 4,
    applicationName: 'groq-webhooks-dashboard',
  });
  const store = new HistoryStore(pool);
  let ready: Promise<HistoryStore> | undefined;
  const writer = new HistoryWriter({ client: deps.client, settings: deps.settings });
  const history = {
    store(): Promise<HistoryStore> {
      if (ready === undefined) {
        const attempt = migrate(pool).then(() => store);
        ready = attempt;
        attempt.catch(() => {
          if (ready === attempt) ready = undefined;
        });
      }
      return ready;
    },
    async replay(...[filters, limit]: Parameters<DashboardHistory['replay']>) {
      return replayEvents(
        { store: await history.store(), queues: deps.queues, writer },
        { filters, ...(limit === undefined ? {} : { limit }) },
      );
    },
    close: () => pool.end(),
  };
  return history;
}
