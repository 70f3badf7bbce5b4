import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startProcess } from '@groq-webhooks/testing';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres } from './embedded-postgres.js';

const CLIENT = fileURLToPath(new URL('./__fixtures__/pg-client.mjs', import.meta.url));

describe('embedded PostgreSQL (PGlite over the wire protocol)', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('serves several processes with pools at once: every answer is their own, transactions whole', async () => {
    const server = await startEmbeddedPostgres();
    try {
      const admin = new pg.Client({ connectionString: server.url });
      await admin.connect();
      await admin.query('create table shared_rows (who text, n int)');
      await admin.query(
        'create table shared_counter (n int); insert into shared_counter values (0)',
      );
      const children = ['a', 'b', 'c'].map((label) =>
        startProcess(process.execPath, [CLIENT, server.url, label, '100']),
      );
      const codes = await Promise.all(children.map((child) => child.exited));
      expect(codes).toEqual([0, 0, 0]);
      const reports = children.map((child) =>
        JSON.parse(child.output().trim().split('\n').at(-1) ?? '{}'),
      );
      expect(reports).toEqual([
        { label: 'a', wrong: 0, errors: 0 },
        { label: 'b', wrong: 0, errors: 0 },
        { label: 'c', wrong: 0, errors: 0 },
      ]);
      // 3 processes × 4 lanes × 10 transactions, none lost or merged.
      const rows = await admin.query('select count(*)::int as n from shared_rows');
      const counter = await admin.query('select n from shared_counter');
      expect(rows.rows[0].n).toBe(120);
      expect(counter.rows[0].n).toBe(120);
      await admin.end();
    } finally {
      await server.close();
    }
  }, 60_000);

  it('a client that disconnects inside a transaction does not block the others, and its writes are rolled back', async () => {
    const server = await startEmbeddedPostgres({ idleHoldMs: 60_000 });
    try {
      const quitter = new pg.Client({ connectionString: server.url });
      quitter.on('error', () => {});
      await quitter.connect();
      await quitter.query('create table t (n int)');
      // Connected first: a new connection's startup also waits for an open transaction's end.
      const other = new pg.Client({ connectionString: server.url });
      await other.connect();
      await quitter.query('begin');
      await quitter.query('insert into t values (1)');
      const waiting = other.query('select count(*)::int as n from t');
      // The other client waits for the transaction's end: here, its client vanishing.
      (
        quitter as unknown as { connection: { stream: { destroy(): void } } }
      ).connection.stream.destroy();
      expect((await waiting).rows[0].n).toBe(0);
      await other.end();
    } finally {
      await server.close();
    }
  }, 30_000);

  it('keeps its data on disk across restarts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'groq-pglite-'));
    dirs.push(dir);
    const first = await startEmbeddedPostgres({ dataDir: join(dir, 'pglite') });
    const client = new pg.Client({ connectionString: first.url });
    await client.connect();
    await client.query("create table kept (v text); insert into kept values ('still here')");
    await client.end();
    await first.close();
    const second = await startEmbeddedPostgres({ dataDir: join(dir, 'pglite') });
    try {
      const again = new pg.Client({ connectionString: second.url });
      await again.connect();
      expect((await again.query('select v from kept')).rows).toEqual([{ v: 'still here' }]);
      await again.end();
    } finally {
      await second.close();
    }
  }, 60_000);
});
