import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Compiled entry points of the production commands (built by `turbo run build`). */
export const ENTRY = {
  ingest: fileURLToPath(new URL('../../apps/ingest/dist/main.js', import.meta.url)),
  worker: fileURLToPath(new URL('../../apps/worker/dist/main.js', import.meta.url)),
  dashboard: fileURLToPath(new URL('../../apps/dashboard/dist/main.js', import.meta.url)),
  cli: fileURLToPath(new URL('../../packages/cli/dist/main.js', import.meta.url)),
} as const;
