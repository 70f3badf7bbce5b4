import { ConfigError } from '../fields.js';

/** The ConfigError `load` throws (fails the test when it throws nothing or something else). */
export function errorOf(load: () => unknown): ConfigError {
  try {
    load();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}
