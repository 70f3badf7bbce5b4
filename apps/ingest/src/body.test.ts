import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { webhookHeaders } from './body.js';

// webhookHeaders reads Node's raw header list instead of `incoming.headers`: these tests send
// raw requests to a real Node HTTP server and hold the two to the same values.

describe('webhookHeaders', () => {
  let server: Server;
  let port = 0;
  const seen: IncomingMessage[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(req);
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    port = typeof address === 'object' && address !== null ? address.port : 0;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  /** Sends one request with these header lines and returns what Node made of it. */
  async function received(headerLines: string[], body = '{}'): Promise<IncomingMessage> {
    const before = seen.length;
    const socket = connect(port, '127.0.0.1');
    const answered = new Promise<void>((resolve, reject) => {
      socket.on('data', () => resolve());
      socket.on('error', reject);
    });
    socket.write(
      `POST /webhooks/groq HTTP/1.1\r\nHost: x\r\n${headerLines.map((line) => `${line}\r\n`).join('')}\r\n${body}`,
    );
    await answered;
    socket.destroy();
    const request = seen[before];
    if (request === undefined) throw new Error('no request reached the server');
    return request;
  }

  function asNode(request: IncomingMessage) {
    const value = (name: string) => {
      const header = request.headers[name];
      return Array.isArray(header) ? header.join(', ') : header;
    };
    return {
      signature: value('x-groq-signature'),
      timestamp: value('x-groq-timestamp'),
      contentLength: value('content-length'),
      transferEncoding: value('transfer-encoding'),
    };
  }

  it.each([
    [
      'the usual request',
      ['x-groq-signature: v1=abc', 'x-groq-timestamp: 1700000000', 'content-length: 2'],
    ],
    [
      'names in any case, beside others of the same lengths',
      [
        'X-Groq-Signature: abc',
        'X-GROQ-TIMESTAMP: 17',
        'X-Request-Id-Abc: other',
        'Content-Type-Xyz: other',
        'Content-Length: 2',
      ],
    ],
    [
      'repeated signature and timestamp headers, joined',
      [
        'x-groq-signature: v1=aaa',
        'X-Groq-Signature: v1=bbb',
        'x-groq-timestamp: 1',
        'x-groq-timestamp: 2',
        'content-length: 2',
      ],
    ],
    ['chunked', ['Transfer-Encoding: chunked', 'x-groq-signature: s']],
    ['none of them', ['content-type: application/json', 'content-length: 2']],
  ])('reads %s as incoming.headers does', async (_case, lines) => {
    const chunked = lines.some((line) => /transfer-encoding/i.test(line));
    const request = await received(lines, chunked ? '2\r\n{}\r\n0\r\n\r\n' : '{}');
    expect(webhookHeaders(request.rawHeaders)).toEqual(asNode(request));
  });

  it('ignores a dangling name without a value', () => {
    expect(webhookHeaders(['x-groq-signature', 'abc', 'x-groq-timestamp'])).toEqual({
      signature: 'abc',
      timestamp: undefined,
      contentLength: undefined,
      transferEncoding: undefined,
    });
  });
});
