import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type TestPostgres } from './postgres.js';

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
