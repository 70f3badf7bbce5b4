import { createServer } from 'node:http';

// The tracing variants' collector: an OTLP/HTTP endpoint that reads every export and drops it,
// answering as a collector does (an empty 200 is an empty export response in either encoding).
const port = Number(process.env.PORT ?? 4318);
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`trace sink listening on ${port}\n`);
});
process.once('SIGTERM', () => process.exit(0));
