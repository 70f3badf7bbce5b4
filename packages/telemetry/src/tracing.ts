import type { Tracer } from '@opentelemetry/api';
import type { OnDemandContextManager } from './on-demand-context.js';

/** A process's tracing, once the OpenTelemetry environment asked for it. */
export interface Tracing {
  /** Where the process makes its spans (the SDK's tracer provider, registered globally). */
  readonly tracer: Tracer;
  /** Exports the spans still buffered (for at most 3 s) and stops the SDK: once, at shutdown. */
  shutdown(): Promise<void>;
}

/** What {@link startTracing} needs. */
export interface StartTracingOptions {
  /** The process environment: the standard `OTEL_*` variables. */
  env: Readonly<Record<string, string | undefined>>;
  /** The process kind; the service name is `groq-webhooks-<service>` unless the env names one. */
  service: string;
  /**
   * Whether a span made active must stay active across `await`s (the worker: what its handlers
   * trace nests under the attempt). On Node 20 that is `AsyncLocalStorage`, whose async hooks
   * run for every promise of the process while it is entered: here only while some
   * `context.with` runs ({@link OnDemandContextManager}). A process that passes its spans'
   * parents explicitly (the ingest) says false and pays none of it.
   */
  asyncContext: boolean;
}

/**
 * Whether the environment asks for traces: a traces exporter other than `none`
 * (`OTEL_TRACES_EXPORTER`), or else an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` or
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); never with `OTEL_SDK_DISABLED=true`. The SDK would
 * export to its default `localhost:4318` with none of them: here nothing set means off.
 */
export function tracingRequested(env: StartTracingOptions['env']): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '' && name !== 'null');
  // The SDK reads `none` first as "no traces", and `none` among others as its default exporter.
  if (exporters.length > 0) return exporters[0] !== 'none';
  return (
    (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? '').trim() !== '' ||
    (env.OTEL_EXPORTER_OTLP_ENDPOINT ?? '').trim() !== ''
  );
}

/**
 * Starts the OpenTelemetry Node SDK, configured by the standard environment, when
 * {@link tracingRequested}; otherwise loads nothing and resolves undefined. Call it before the
 * process loads what should be traced (the worker's handler module).
 */
export async function startTracing(options: StartTracingOptions): Promise<Tracing | undefined> {
  if (!tracingRequested(options.env)) return undefined;
  // Loaded only now: with tracing off, no SDK module is ever read.
  const { startSdk } = await import('./tracing-sdk.js');
  return startSdk(options);
}
