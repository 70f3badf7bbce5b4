import { createServer, type Server, type Socket } from 'node:net';
import { PGlite } from '@electric-sql/pglite';

/** Options of {@link startEmbeddedPostgres}. */
export interface EmbeddedPostgresOptions {
  /** Where the database lives on disk; undefined: in memory (tests). */
  dataDir?: string;
  /** Port to listen on; 0 (default): a free one. */
  port?: number;
  /** Default 127.0.0.1: the embedded server has no authentication. */
  host?: string;
  /**
   * A client that holds the database (inside a transaction, or half way through an extended
   * query) and sends nothing for this long is disconnected, so it cannot stall the others.
   * Default 30 s.
   */
  idleHoldMs?: number;
}

/** A running embedded PostgreSQL. */
export interface EmbeddedPostgres {
  /** `postgres://postgres@host:port/postgres`. */
  readonly url: string;
  readonly port: number;
  /** Disconnects every client, stops listening and closes the database. */
  close(): Promise<void>;
}

const SSL_REQUEST = 80_877_103;
const GSSENC_REQUEST = 80_877_104;
const CANCEL_REQUEST = 80_877_102;
/** A Sync message: ends an extended-query unit. */
const SYNC = Buffer.from([0x53, 0, 0, 0, 4]);

/**
 * PGlite (PostgreSQL compiled to WebAssembly, in this process) served over the PostgreSQL wire
 * protocol, so that other processes reach it with an ordinary driver such as `pg`.
 *
 * PGlite is one backend session. Clients take turns at it by *unit*: a simple query, or an
 * extended-query sequence up to its Sync, and a whole transaction when one is open. Messages
 * of two clients are never interleaved within a unit (pglite-socket 0.2's multiplexer does
 * interleave them per message, which breaks `pg`'s parameterised queries under concurrency:
 * "unnamed prepared statement does not exist"). Session state (`SET`, session advisory locks) is
 * shared by every client; transaction-scoped locks and `FOR UPDATE` behave as usual.
 */
export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions = {},
): Promise<EmbeddedPostgres> {
  const db = options.dataDir === undefined ? new PGlite() : new PGlite(options.dataDir);
  await db.waitReady;
  const scheduler = new UnitScheduler(db, options.idleHoldMs ?? 30_000);
  const sessions = new Set<Session>();
  const server: Server = createServer((socket) => {
    const session = new Session(socket, scheduler);
    sessions.add(session);
    socket.once('close', () => sessions.delete(session));
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    url: `postgres://postgres@${host}:${port}/postgres`,
    port,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const session of sessions) session.socket.destroy();
      await closed;
      await scheduler.idle();
      await db.close();
    },
  };
}

/** One client connection: splits its bytes into protocol messages and queues them. */
class Session {
  readonly socket: Socket;
  readonly #scheduler: UnitScheduler;
  #buffer: Buffer = Buffer.alloc(0);
  #started = false;
  /** Complete messages waiting for their turn. */
  readonly messages: Buffer[] = [];
  closed = false;

  constructor(socket: Socket, scheduler: UnitScheduler) {
    this.socket = socket;
    this.#scheduler = scheduler;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#receive(chunk));
    socket.on('error', () => {});
    socket.once('close', () => {
      this.closed = true;
      scheduler.leave(this);
    });
  }

  /** Sends backend output to the client. */
  send(data: Uint8Array): void {
    if (!this.closed && data.length > 0) this.socket.write(data);
  }

  #receive(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    let queued = false;
    for (;;) {
      if (!this.#started) {
        // Startup phase: length-prefixed packets without a type byte.
        if (this.#buffer.length < 8) break;
        const length = this.#buffer.readInt32BE(0);
        if (length < 8 || length > 10_000) {
          this.#fail();
          return;
        }
        if (this.#buffer.length < length) break;
        const code = this.#buffer.readInt32BE(4);
        const packet = this.#buffer.subarray(0, length);
        this.#buffer = this.#buffer.subarray(length);
        if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
          this.socket.write('N');
          continue;
        }
        if (code === CANCEL_REQUEST) {
          this.#fail();
          return;
        }
        this.#started = true;
        this.messages.push(Buffer.from(packet));
        queued = true;
        continue;
      }
      if (this.#buffer.length < 5) break;
      const length = this.#buffer.readInt32BE(1);
      if (length < 4) {
        this.#fail();
        return;
      }
      if (this.#buffer.length < length + 1) break;
      const message = Buffer.from(this.#buffer.subarray(0, length + 1));
      this.#buffer = this.#buffer.subarray(length + 1);
      // Terminate: the client is leaving; never hand it to the backend, which it would close.
      if (message[0] === 0x58) {
        this.socket.end();
        continue;
      }
      this.messages.push(message);
      queued = true;
    }
    if (queued) this.#scheduler.wake(this);
  }

  #fail(): void {
    this.socket.destroy();
  }
}

/**
 * Gives the one PGlite session to one client at a time, for a whole unit (see
 * {@link startEmbeddedPostgres}); clients waiting for a turn are served in arrival order.
 */
class UnitScheduler {
  readonly #db: PGlite;
  readonly #idleHoldMs: number;
  #owner: Session | undefined;
  readonly #waiting: Session[] = [];
  #driving: Promise<void> | undefined;
  #holdTimer: NodeJS.Timeout | undefined;

  constructor(db: PGlite, idleHoldMs: number) {
    this.#db = db;
    this.#idleHoldMs = idleHoldMs;
  }

  /** A session has messages queued. */
  wake(session: Session): void {
    if (this.#owner === undefined) this.#owner = session;
    else if (this.#owner !== session && !this.#waiting.includes(session)) {
      this.#waiting.push(session);
    }
    this.#drive();
  }

  /** A session disconnected: drop it, and end whatever it left open. */
  leave(session: Session): void {
    const index = this.#waiting.indexOf(session);
    if (index !== -1) this.#waiting.splice(index, 1);
    session.messages.length = 0;
    if (this.#owner === session) this.#drive();
  }

  /** Resolves when no message is being run. */
  async idle(): Promise<void> {
    while (this.#driving !== undefined) await this.#driving;
  }

  #drive(): void {
    if (this.#driving !== undefined) return;
    this.#driving = this.#run().finally(() => {
      this.#driving = undefined;
    });
  }

  async #run(): Promise<void> {
    clearTimeout(this.#holdTimer);
    for (;;) {
      const owner = this.#owner;
      if (owner === undefined) return;
      if (owner.closed) {
        await this.#reset();
        this.#next();
        continue;
      }
      const message = owner.messages.shift();
      if (message === undefined) {
        if (this.#unitOpen) {
          // Its unit is not finished: nobody else may run until it is, or it goes idle too long.
          this.#holdTimer = setTimeout(() => owner.socket.destroy(), this.#idleHoldMs);
          this.#holdTimer.unref();
          return;
        }
        this.#next();
        continue;
      }
      await this.#db.execProtocolRawStream(new Uint8Array(message), {
        onRawData: (data) => owner.send(data),
      });
      const type = message[0];
      // A unit ends with a Sync or a simple Query (or the startup packet) outside a transaction.
      const ends = type === 0x53 || type === 0x51 || this.#isStartup(message);
      this.#unitOpen = !ends || this.#db.isInTransaction();
      if (!this.#unitOpen && owner.messages.length > 0 && this.#waiting.length > 0) {
        // Let the others have a turn before its next unit.
        this.#waiting.push(owner);
        this.#next();
      }
    }
  }

  #unitOpen = false;

  #isStartup(message: Buffer): boolean {
    return message.length >= 8 && message.readInt32BE(4) === 196_608;
  }

  /** Hands the session to the next waiting client (or to nobody). */
  #next(): void {
    this.#unitOpen = false;
    this.#owner = this.#waiting.shift();
  }

  /** After a client vanished mid-unit: end its extended query and roll its transaction back. */
  async #reset(): Promise<void> {
    if (!this.#unitOpen) return;
    try {
      await this.#db.execProtocolRaw(new Uint8Array(SYNC));
      if (this.#db.isInTransaction()) await this.#db.exec('rollback');
    } catch {
      // Nothing more can be done for the backend state; the next client's unit starts afresh.
    }
  }
}
