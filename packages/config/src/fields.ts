/** Environment as given to a process: names to optional strings. */
export type Env = Readonly<Record<string, string | undefined>>;

/**
 * A bad or missing configuration value. Its message is one line naming the variable (and the
 * setting, when the value was given in code as a setting rather than in the environment).
 */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    /** The environment variable at fault. */
    readonly variable: string,
    /** What is wrong, e.g. `is required` or `must be a whole number from 1 to 1000, got "0"`. */
    readonly problem: string,
    /** The camelCase setting the value came from, when it was given in code. */
    readonly setting?: string,
  ) {
    super(
      `Invalid configuration: ${setting === undefined ? variable : `${setting} (${variable})`} ${problem}`,
    );
  }
}

/** Reads one variable; blank counts as unset. */
export type Field<T> = (env: Env, name: string) => T;

function raw(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/** Shows a value in an error, shortened; secrets never reach here. */
function shown(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
}

/** An integer in [min, max]; digits only, so `10abc` or `1e3` are refused. */
export function int(options: { default?: number; min: number; max: number }): Field<number> {
  return (env, name) => {
    const value = raw(env, name);
    if (value === undefined) {
      if (options.default === undefined) throw new ConfigError(name, 'is required');
      return options.default;
    }
    const range = `from ${options.min} to ${options.max}`;
    if (!/^-?[0-9]+$/.test(value)) {
      throw new ConfigError(name, `must be a whole number ${range}, got ${shown(value)}`);
    }
    const parsed = Number(value);
    if (!Number.isSafeInteger(parsed) || parsed < options.min || parsed > options.max) {
      throw new ConfigError(name, `must be a whole number ${range}, got ${shown(value)}`);
    }
    return parsed;
  };
}

/** An integer in [min, max], or undefined when unset. */
export function optionalInt(options: { min: number; max: number }): Field<number | undefined> {
  const parse = int(options);
  return (env, name) => (raw(env, name) === undefined ? undefined : parse(env, name));
}

/** A plain string. */
export function text(options: {
  default: string;
  pattern?: RegExp;
  expected?: string;
}): Field<string> {
  return (env, name) => {
    const value = raw(env, name) ?? options.default;
    if (options.pattern && !options.pattern.test(value)) {
      throw new ConfigError(
        name,
        `must be ${options.expected ?? options.pattern}, got ${shown(value)}`,
      );
    }
    return value;
  };
}

/** An optional string (undefined when unset). */
export function optionalText(): Field<string | undefined> {
  return (env, name) => raw(env, name);
}

/** One of a fixed list of words. */
export function oneOf<const T extends string>(values: readonly T[], fallback: T): Field<T> {
  return (env, name) => {
    const value = raw(env, name) ?? fallback;
    if (!(values as readonly string[]).includes(value)) {
      throw new ConfigError(name, `must be one of ${values.join(', ')}, got ${shown(value)}`);
    }
    return value as T;
  };
}

/**
 * A secret or a comma-separated list of them (rotation). Never echoed in errors.
 * Required unless `optional`.
 */
export function secrets(options: {
  optional: boolean;
  minLength?: number;
}): Field<readonly string[]> {
  return (env, name) => {
    const value = env[name];
    const list = (value ?? '')
      .split(',')
      .map((part) => part.trim())
      .filter((part) => part.length > 0);
    if (list.length === 0) {
      if (options.optional) return Object.freeze([]);
      throw new ConfigError(name, 'is required (a secret, or several separated by commas)');
    }
    const min = options.minLength ?? 1;
    const shortIndex = list.findIndex((secret) => secret.length < min);
    if (shortIndex !== -1) {
      throw new ConfigError(name, `entry ${shortIndex + 1} is shorter than ${min} characters`);
    }
    return Object.freeze(list);
  };
}

/** A `redis://` or `rediss://` URL. */
export function redisUrl(fallback: string): Field<string> {
  return (env, name) => {
    const value = raw(env, name) ?? fallback;
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new ConfigError(name, 'must be a URL like redis://host:6379');
    }
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
      throw new ConfigError(name, `must use redis:// or rediss://, got ${shown(url.protocol)}`);
    }
    return value;
  };
}

/**
 * An optional `postgres://` or `postgresql://` URL (undefined when unset). Errors never echo it:
 * it may carry a password.
 */
export function postgresUrl(): Field<string | undefined> {
  return (env, name) => {
    const value = raw(env, name);
    if (value === undefined) return undefined;
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new ConfigError(name, 'must be a URL like postgres://user:password@host:5432/database');
    }
    if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
      throw new ConfigError(
        name,
        `must use postgres:// or postgresql://, got ${shown(url.protocol)}`,
      );
    }
    return value;
  };
}

/** A host:port pair. */
export interface HostPort {
  host: string;
  port: number;
}

/** `host:port,host:port`, or undefined when unset. */
export function hostPorts(): Field<readonly HostPort[] | undefined> {
  return (env, name) => {
    const value = raw(env, name);
    if (value === undefined) return undefined;
    const nodes = value
      .split(',')
      .map((part) => part.trim())
      .filter((part) => part.length > 0)
      .map((part) => {
        const match = /^(.+):([0-9]{1,5})$/.exec(part);
        const port = Number(match?.[2]);
        if (!match?.[1] || port < 1 || port > 65535) {
          throw new ConfigError(
            name,
            `must be host:port pairs separated by commas, got ${shown(part)}`,
          );
        }
        return Object.freeze({ host: match[1].replace(/^\[(.*)\]$/, '$1'), port });
      });
    if (nodes.length === 0) throw new ConfigError(name, 'must list at least one host:port');
    return Object.freeze(nodes);
  };
}

/** A required secret token, taken whole; never echoed in errors. */
export function token(options: { minLength: number }): Field<string> {
  return (env, name) => {
    const value = raw(env, name);
    if (value === undefined) throw new ConfigError(name, 'is required');
    if (value.length < options.minLength) {
      throw new ConfigError(name, `must be at least ${options.minLength} characters long`);
    }
    return value;
  };
}
