import { ConfigError } from './fields.js';

/**
 * Runs a config loader for a process entry point: on a {@link ConfigError} it prints the one
 * line naming the variable and exits with status 78 (EX_CONFIG); other errors propagate.
 */
export function loadOrExit<T>(load: () => T): T {
  try {
    return load();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78);
    }
    throw error;
  }
}
