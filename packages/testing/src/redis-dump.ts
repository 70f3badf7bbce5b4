/** The one read {@link dumpKeys} needs: any ioredis client's `call`. */
export interface DumpClient {
  call(command: string, ...args: (string | number)[]): Promise<unknown>;
}

/** One key's content, by its Redis type. */
export type DumpedValue =
  | { type: 'hash'; value: Record<string, string> }
  | { type: 'list'; value: string[] }
  | { type: 'zset'; value: [member: string, score: string][] }
  | { type: 'stream'; value: string[][] }
  | { type: 'string'; value: string | null }
  | { type: string; value: undefined };

/**
 * Every key under `prefix` with its content (stream entries without their ids), by the name
 * after the prefix, in key order: what a script left in Redis, to compare with what another
 * left. Tests normalise times themselves.
 */
export async function dumpKeys(
  client: DumpClient,
  prefix: string,
): Promise<Record<string, DumpedValue>> {
  const read = (command: string, ...args: (string | number)[]) => client.call(command, ...args);
  const out: Record<string, DumpedValue> = {};
  for (const key of ((await read('KEYS', `${prefix}*`)) as string[]).sort()) {
    const name = key.slice(prefix.length);
    const type = (await read('TYPE', key)) as string;
    if (type === 'hash') {
      out[name] = {
        type,
        value: Object.fromEntries(pairs((await read('HGETALL', key)) as string[])),
      };
    } else if (type === 'list') {
      out[name] = { type, value: (await read('LRANGE', key, 0, -1)) as string[] };
    } else if (type === 'zset') {
      out[name] = {
        type,
        value: pairs((await read('ZRANGE', key, 0, -1, 'WITHSCORES')) as string[]),
      };
    } else if (type === 'stream') {
      const entries = (await read('XRANGE', key, '-', '+')) as [string, string[]][];
      out[name] = { type, value: entries.map(([, fields]) => fields) };
    } else if (type === 'string') {
      out[name] = { type, value: (await read('GET', key)) as string | null };
    } else {
      out[name] = { type, value: undefined };
    }
  }
  return out;
}

/** Field/value or member/score pairs, from a flat list, a list of pairs or a map reply. */
function pairs(reply: unknown): [string, string][] {
  if (!Array.isArray(reply)) return Object.entries(reply as Record<string, string>);
  if (reply.every((item) => Array.isArray(item))) {
    return reply.map((item: unknown[]) => [String(item[0]), String(item[1])]);
  }
  const out: [string, string][] = [];
  for (let i = 0; i < reply.length; i += 2) out.push([String(reply[i]), String(reply[i + 1])]);
  return out;
}
