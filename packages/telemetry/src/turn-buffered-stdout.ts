import { writeSync } from 'node:fs';

/**
 * A pino destination that gathers the lines of one turn of the event loop and writes them to a
 * file descriptor in one system call at the end of that turn, instead of one call per line
 * (its gain: docs/performance.md). Lines still
 * leave before the process polls for more I/O, so they trail what they describe by microseconds.
 */
export class TurnBufferedStdout {
  readonly #fd: number;
  #lines: string[] = [];
  #scheduled = false;
  readonly #flushNow = () => this.flushSync();

  constructor(fd = 1) {
    this.#fd = fd;
  }

  /** Buffers one line (pino hands over whole lines, newline included). */
  write(line: string): boolean {
    this.#lines.push(line);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flushNow);
      // What is still buffered when the process exits (process.exit, a crash) goes out then.
      process.once('exit', this.#flushNow);
    }
    return true;
  }

  /** Writes what is buffered now. */
  flushSync(): void {
    if (this.#scheduled) {
      this.#scheduled = false;
      process.off('exit', this.#flushNow);
    }
    if (this.#lines.length === 0) return;
    const text = this.#lines.length === 1 ? (this.#lines[0] as string) : this.#lines.join('');
    this.#lines = [];
    // Written as a string: Node encodes it once on the way out (half the cost of a Buffer first).
    let written = 0;
    try {
      written = writeSync(this.#fd, text);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
    }
    if (written === Buffer.byteLength(text)) return;
    let buffer = Buffer.from(text, 'utf8').subarray(written);
    // A non-blocking pipe may take part of it, or nothing for a moment: keep at it.
    while (buffer.byteLength > 0) {
      try {
        buffer = buffer.subarray(writeSync(this.#fd, buffer));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
      }
    }
  }

  /** pino's `logger.flush(cb)`: writes what is buffered, then calls back. */
  flush(callback?: (error?: Error) => void): void {
    try {
      this.flushSync();
      callback?.();
    } catch (error) {
      callback?.(error as Error);
    }
  }
}
