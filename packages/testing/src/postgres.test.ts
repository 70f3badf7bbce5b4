import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from './ports.js';
import { startPostgres, type TestPostgres } from './postgres.js';
import { PortTakenError } from './process.js';

describe('startPostgres', () => {
  let server: TestPostgres;
  beforeAll(async () => {
    server = await startPostgres();
  }, 60_000);
  afterAll(async () => {
    await server?.cleanup();
  });

  it('serves its own databases, and keeps their data across a stop and start', async () => {
    const url = await server.createDatabase();
    await server.query('create table kept (n int)', [], url);
    await server.query('insert into kept values ($1)', [7], url);
    if (server.owned) {
      await server.stop();
      await expect(server.query('select 1', [], url)).rejects.toThrow();
      await server.start();
    }
    expect(await server.query('select n from kept', [], url)).toEqual([{ n: 7 }]);
  }, 60_000);

  it('removes its data directory on cleanup', async () => {
    const own = await startPostgres();
    const rows = await own.query<{ dir: string }>(
      "select current_setting('data_directory') as dir",
    );
    const dir = rows[0]?.dir ?? '';
    if (own.owned) expect(existsSync(dir)).toBe(true);
    await own.cleanup();
    expect(existsSync(dir)).toBe(false);
  }, 60_000);
});

describe('startPostgres when its port is taken', () => {
  it.skipIf(process.env.TEST_DATABASE_URL)(
    "reports the clash at once (PortTakenError, with the server's own words) when the caller chose the port",
    async () => {
      const port = await freePort();
      const holder = createServer((socket) => socket.destroy());
      await new Promise<void>((resolve) => holder.listen(port, '127.0.0.1', resolve));
      try {
        const started = Date.now();
        const failure = await startPostgres({ port }).catch((error: unknown) => error);
        expect(failure).toBeInstanceOf(PortTakenError);
        expect(String(failure)).toContain('Address already in use');
        // It noticed the exit rather than waiting out its 30 s deadline.
        expect(Date.now() - started).toBeLessThan(25_000);
      } finally {
        await new Promise((resolve) => holder.close(resolve));
      }
    },
    60_000,
  );
});
