import { type Logger, pino } from 'pino';
import { REDACTED_PATHS } from './logger.js';

/** What {@link writeLine} writes: flat values only (an `undefined` field is left out). */
export type LineFields = Record<string, string | number | boolean | undefined>;

/** Levels {@link writeLine} writes at. */
export type LineLevel = 'debug' | 'info' | 'warn' | 'error';

const { lsCacheSym, timeSym, chindingsSym, streamSym, endSym, messageKeySym } = pino.symbols;

/** Top-level keys pino censors: a line holding one goes through pino itself. */
const CENSORED_KEYS = new Set<string>(REDACTED_PATHS.filter((path) => /^\w+$/.test(path)));

/** `,"key":` by field name: the hot paths use a handful of names, each quoted once. */
const KEY_PREFIXES = new Map<string, string>();
/** Names are fields in code, but should one be made up at run time, stop remembering. */
const MAX_KEY_PREFIXES = 256;
/**
 * A string JSON writes as itself between quotes: no quote, backslash, control character or
 * surrogate (lone surrogates are escaped; a pair goes the general way too).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what JSON escapes.
const VERBATIM = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;

/**
 * Writes `logger[level](fields, msg)`, byte for byte as pino would (the same destination, level
 * label, time, bindings, field order and escaping; one difference: a lone surrogate is escaped,
 * where pino writes it raw and it reaches the log as U+FFFD), for the one line per request or job
 * on the hot paths: pino's general path (formatters, serializers, redaction, an object walk)
 * costs several times more (docs/performance.md). Only flat fields: anything else,
 * such as an error, is logged with the logger itself.
 */
export function writeLine(logger: Logger, level: LineLevel, fields: LineFields, msg: string): void {
  if (!logger.isLevelEnabled(level)) return;
  const internals = logger as unknown as Record<symbol, unknown>;
  const levelValue = logger.levels.values[level] as number;
  let line =
    (internals[lsCacheSym] as Record<number, string>)[levelValue] +
    (internals[timeSym] as () => string)() +
    (internals[chindingsSym] as string);
  for (const key in fields) {
    const value = fields[key];
    if (value === undefined) continue;
    if (CENSORED_KEYS.has(key)) {
      logger[level](fields, msg);
      return;
    }
    line +=
      keyPrefix(key) +
      (typeof value === 'string'
        ? VERBATIM.test(value)
          ? `"${value}"`
          : JSON.stringify(value)
        : typeof value === 'number' && !Number.isFinite(value)
          ? 'null'
          : String(value));
  }
  line += messageSuffix(internals[messageKeySym] as string, msg, internals[endSym] as string);
  (internals[streamSym] as { write(line: string): void }).write(line);
}

/** `,"msg":"…"}` and the line end by message: the hot paths log a handful of fixed messages. */
const MESSAGE_SUFFIXES = new Map<string, { messageKey: string; end: string; suffix: string }>();

function messageSuffix(messageKey: string, msg: string, end: string): string {
  const cached = MESSAGE_SUFFIXES.get(msg);
  if (cached !== undefined && cached.messageKey === messageKey && cached.end === end) {
    return cached.suffix;
  }
  const suffix = `,${JSON.stringify(messageKey)}:${JSON.stringify(msg)}${end}`;
  if (MESSAGE_SUFFIXES.size < MAX_KEY_PREFIXES)
    MESSAGE_SUFFIXES.set(msg, { messageKey, end, suffix });
  return suffix;
}

function keyPrefix(key: string): string {
  let prefix = KEY_PREFIXES.get(key);
  if (prefix === undefined) {
    prefix = `,${JSON.stringify(key)}:`;
    if (KEY_PREFIXES.size < MAX_KEY_PREFIXES) KEY_PREFIXES.set(key, prefix);
  }
  return prefix;
}
