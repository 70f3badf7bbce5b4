// Negative fixture: must NOT compile (checked by start-worker.test.ts).
import { startWorker } from '../../start-worker.js';

await startWorker({
  handlers: {
    'resource.created': async () => {},
    'resource.updated': async () => {},
  },
  workerConcurrency: 5,
});
