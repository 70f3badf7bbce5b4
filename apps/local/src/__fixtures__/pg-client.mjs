// A separate process hammering a PostgreSQL URL with parameterised queries and transactions, as
// the worker, dashboard and CLI do together against the embedded server. Prints one JSON line.
import pg from 'pg';

const [url, label, rounds] = process.argv.slice(2);
const pool = new pg.Pool({ connectionString: url, max: 4 });
let wrong = 0;
let errors = 0;
await Promise.all(
  Array.from({ length: 4 }, async (_, lane) => {
    for (let i = 0; i < Number(rounds); i++) {
      const n = lane * 100_000 + i;
      try {
        const { rows } = await pool.query('select $1::int as n, $2::text as who', [
          n,
          `${label}-${n}`,
        ]);
        if (rows[0]?.n !== n || rows[0]?.who !== `${label}-${n}`) wrong += 1;
        if (i % 10 === 0) {
          const client = await pool.connect();
          try {
            await client.query('begin');
            await client.query('insert into shared_rows (who, n) values ($1, $2)', [label, n]);
            await client.query('update shared_counter set n = n + 1');
            await client.query('commit');
          } finally {
            client.release();
          }
        }
      } catch (error) {
        errors += 1;
        if (errors === 1) process.stderr.write(`${error.message}\n`);
      }
    }
  }),
);
await pool.end();
process.stdout.write(`${JSON.stringify({ label, wrong, errors })}\n`);
