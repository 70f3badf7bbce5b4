import { join } from 'node:path';
import type { Env } from '@groq-webhooks/config';

/**
 * The module `pnpm start` and `pnpm worker` give the worker: `HANDLERS_MODULE` when set, else
 * the handlers package of this checkout (packages/handlers), where a fork keeps its handlers and
 * their dependencies. The worker bin itself defaults to its built-in examples.
 */
export function checkoutHandlersModule(env: Env, root: string): string {
  const given = env.HANDLERS_MODULE?.trim();
  return given ? given : join(root, 'packages', 'handlers', 'src', 'index.ts');
}
