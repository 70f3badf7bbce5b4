const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;

/** Default deepest nesting of objects and arrays a webhook body may have (`MAX_JSON_DEPTH`). */
export const DEFAULT_MAX_JSON_DEPTH = 64;

/**
 * Whether a JSON text nests objects and arrays more than `maxDepth` levels deep, by one pass over
 * its bytes, before anything parses it: a deeply nested event parses fine, but everything that
 * later serialises it (logs, the dashboard, the CLI) recurses once per level and overflows the
 * stack. Brackets inside strings are skipped; the bytes are UTF-8, whose multi-byte sequences
 * never contain these ASCII codes. Exact for valid JSON; for invalid JSON the answer does not
 * matter, the parser refuses it next. About 1 ns a byte (`node bench/dist/json-depth.js`).
 */
export function jsonNestedDeeperThan(bytes: Uint8Array, maxDepth: number): boolean {
  let depth = 0;
  const length = bytes.length;
  for (let i = 0; i < length; i++) {
    const byte = bytes[i];
    if (byte === QUOTE) {
      // Skip the string: a backslash escapes the byte after it.
      for (i++; i < length; i++) {
        const inner = bytes[i];
        if (inner === BACKSLASH) i++;
        else if (inner === QUOTE) break;
      }
    } else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      depth++;
      if (depth > maxDepth) return true;
    } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}
