import { createServer, type IncomingMessage } from 'node:http';
import { gunzipSync } from 'node:zlib';

/** An attribute value as OTLP/JSON carries it, decoded. */
export type SpanAttributeValue = string | number | boolean | null | SpanAttributeValue[];

/** One span as an OTLP/HTTP exporter sent it (JSON encoding), flattened. */
export interface CollectedSpan {
  /** `service.name` of the resource that sent it. */
  service: string | undefined;
  traceId: string;
  spanId: string;
  /** Undefined for a root span. */
  parentSpanId: string | undefined;
  name: string;
  /** OTLP's `SpanKind`: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  attributes: Record<string, SpanAttributeValue>;
  events: { name: string; attributes: Record<string, SpanAttributeValue> }[];
  links: { traceId: string; spanId: string }[];
  /** OTLP's `StatusCode`: 0 unset, 1 ok, 2 error. */
  status: { code: number; message: string | undefined };
  /** Every attribute of the span, its events, links and resource, as text: for leak checks. */
  text: string;
}

/** A test OTLP/HTTP receiver (`OTEL_EXPORTER_OTLP_PROTOCOL=http/json`) on 127.0.0.1. */
export interface OtlpReceiver {
  /** For `OTEL_EXPORTER_OTLP_ENDPOINT`. */
  readonly url: string;
  /** Every span received so far, in arrival order. */
  spans(): CollectedSpan[];
  /** Every request received so far (path and content type), spans or not. */
  requests(): { path: string; contentType: string | undefined }[];
  close(): Promise<void>;
}

interface AnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: number | string;
  doubleValue?: number;
  arrayValue?: { values?: AnyValue[] };
  kvlistValue?: { values?: KeyValue[] };
  bytesValue?: string;
}
interface KeyValue {
  key: string;
  value?: AnyValue;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: number;
  attributes?: KeyValue[];
  events?: { name: string; attributes?: KeyValue[] }[];
  links?: { traceId: string; spanId: string; attributes?: KeyValue[] }[];
  status?: { code?: number; message?: string };
}
interface ExportTraceServiceRequest {
  resourceSpans?: {
    resource?: { attributes?: KeyValue[] };
    scopeSpans?: { spans?: OtlpSpan[] }[];
  }[];
}

/** Starts a receiver on a free port; `close()` it when done. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: CollectedSpan[] = [];
  const requests: { path: string; contentType: string | undefined }[] = [];
  const server = createServer((req, res) => {
    void readAll(req).then(
      (body) => {
        const contentType = req.headers['content-type'];
        requests.push({ path: req.url ?? '', contentType });
        if (req.method !== 'POST' || req.url !== '/v1/traces') {
          res.writeHead(404).end();
          return;
        }
        if (contentType !== 'application/json') {
          res.writeHead(415).end();
          return;
        }
        const text = (
          req.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body
        ).toString('utf8');
        spans.push(...flatten(JSON.parse(text) as ExportTraceServiceRequest));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      },
      () => res.writeHead(400).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    spans: () => [...spans],
    requests: () => [...requests],
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function flatten(request: ExportTraceServiceRequest): CollectedSpan[] {
  const out: CollectedSpan[] = [];
  for (const resourceSpans of request.resourceSpans ?? []) {
    const resource = attributesOf(resourceSpans.resource?.attributes);
    const service = resource['service.name'];
    for (const scope of resourceSpans.scopeSpans ?? []) {
      for (const span of scope.spans ?? []) {
        const attributes = attributesOf(span.attributes);
        const events = (span.events ?? []).map((event) => ({
          name: event.name,
          attributes: attributesOf(event.attributes),
        }));
        const links = (span.links ?? []).map((link) => ({
          traceId: link.traceId,
          spanId: link.spanId,
        }));
        out.push({
          service: typeof service === 'string' ? service : undefined,
          traceId: span.traceId,
          spanId: span.spanId,
          parentSpanId:
            span.parentSpanId === undefined || span.parentSpanId === ''
              ? undefined
              : span.parentSpanId,
          name: span.name,
          kind: span.kind ?? 0,
          attributes,
          events,
          links,
          status: { code: span.status?.code ?? 0, message: span.status?.message },
          text: JSON.stringify([
            resource,
            attributes,
            events,
            (span.links ?? []).map((link) => attributesOf(link.attributes)),
            span.status?.message,
            span.name,
          ]),
        });
      }
    }
  }
  return out;
}

function attributesOf(list: KeyValue[] | undefined): Record<string, SpanAttributeValue> {
  const out: Record<string, SpanAttributeValue> = {};
  for (const { key, value } of list ?? []) out[key] = decode(value);
  return out;
}

function decode(value: AnyValue | undefined): SpanAttributeValue {
  if (value === undefined) return null;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  // OTLP/JSON may write a 64-bit integer as a string.
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.arrayValue !== undefined) return (value.arrayValue.values ?? []).map(decode);
  if (value.kvlistValue !== undefined) return JSON.stringify(value.kvlistValue);
  if (value.bytesValue !== undefined) return value.bytesValue;
  return null;
}
