import { serve } from '@hono/node-server';
import { Hono } from 'hono';

// The baseline: a bare Hono server on @hono/node-server that answers 200 without reading the body.
const app = new Hono();
app.post('/webhooks/groq', (c) => c.json({ received: true }));
const port = Number(process.env.PORT ?? 3900);
serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, () => {
  process.stdout.write(`baseline listening on ${port}\n`);
});
process.once('SIGTERM', () => process.exit(0));
