// `pnpm worker`: the production worker (apps/worker), in this process, running this checkout's
// handlers package unless HANDLERS_MODULE names another module.
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { findRepoRoot, whenParentGone } from '@groq-webhooks/config';
import { checkoutHandlersModule } from './handlers-module.js';

const root = findRepoRoot(fileURLToPath(new URL('.', import.meta.url))) ?? process.cwd();
process.env.HANDLERS_MODULE = checkoutHandlersModule(process.env, root);

// Run by `pnpm worker`, a SIGTERM usually reaches pnpm, which exits without passing it on: the
// worker would be left orphaned. So it shuts down, as on SIGTERM, when its launcher goes away.
if (process.env.npm_lifecycle_event === 'worker') {
  whenParentGone(process.ppid, () => process.kill(process.pid, 'SIGTERM'));
}

await import(pathToFileURL(join(root, 'apps', 'worker', 'dist', 'main.js')).href);
