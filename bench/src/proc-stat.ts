import { readdirSync, readFileSync } from 'node:fs';

/** CPU time (user + system) a process has used, in milliseconds, from /proc (Linux). */
export function cpuMillis(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    // Linux reports clock ticks; USER_HZ is 100 on every mainstream kernel.
    return ((utime + stime) * 1000) / 100;
  } catch {
    return undefined;
  }
}

/**
 * CPU microseconds per unit (request, job) between two {@link cpuMillis} readings of `count`
 * units; undefined when a reading is missing or nothing was counted.
 */
export function cpuMicrosPer(
  before: number | undefined,
  after: number | undefined,
  count: number,
): number | undefined {
  return before !== undefined && after !== undefined && count > 0
    ? Math.round(((after - before) * 1000) / count)
    : undefined;
}

/**
 * CPU time of every live descendant of a process (children, their children…), not the process
 * itself, in milliseconds: a worker's archiver, a PostgreSQL server's backends.
 */
export function descendantsCpuMillis(pid: number): number {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(parent) ?? [];
      list.push(Number(entry));
      children.set(parent, list);
    } catch {
      // Gone meanwhile.
    }
  }
  let total = 0;
  const walk = (parent: number) => {
    for (const child of children.get(parent) ?? []) {
      total += cpuMillis(child) ?? 0;
      walk(child);
    }
  };
  walk(pid);
  return total;
}
