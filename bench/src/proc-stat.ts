import { readFileSync } from 'node:fs';

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
