import { jobOptions } from '../job-options.js';
import type { QueuePath } from '../queue-path.js';
import { FastBatchWriter } from './batch-writer.js';
import { storedJobOptions } from './enqueue-script.js';
import { fusedFinishScript } from './finish-script.js';
import { FastLedger } from './ledger.js';
import type { ReviewedScripts } from './reviewed-scripts.js';

export { checkReviewedScripts, REVIEWED_SHA256, type ScriptCheck } from './reviewed-scripts.js';

/**
 * The fast path, for a single Redis whose BullMQ scripts are the reviewed ones: the producer's
 * batch is one script call, and the worker's claim and done-marker ride on BullMQ's job finish.
 * Everything in this folder knows BullMQ's internals; nothing outside it does.
 */
export function createFastPath(scripts: ReviewedScripts): QueuePath {
  const finishScript = fusedFinishScript(scripts.moveToFinished);
  return {
    kind: 'fast',
    batchWriter: (client, settings, options) =>
      new FastBatchWriter(client, {
        maxInFlight: options.maxInFlight,
        storedOptions: storedJobOptions(jobOptions(settings)),
        // The script writes the records, atomically with the jobs.
        history: options.history !== undefined,
      }),
    ledger: (client, options) =>
      new FastLedger(client, { doneTtlSeconds: options.doneTtlSeconds, finishScript }),
  };
}
