import { trace } from '@opentelemetry/api';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { StackContextManager } from '@opentelemetry/sdk-trace';
import { OnDemandContextManager } from './on-demand-context.js';
import type { StartTracingOptions, Tracing } from './tracing.js';

/** The instrumentation scope of the project's own spans. */
const TRACER_NAME = 'groq-webhooks';
/**
 * Longest a shutdown waits for the last export: a collector that does not answer must not hold
 * a stopping process past its own deadline (the SDK's export timeout is 30 s).
 */
const SHUTDOWN_FLUSH_MS = 3000;

/**
 * The SDK as the environment configures it (exporter, endpoint, protocol, sampler, propagators,
 * resource, batch settings), with the project's defaults: the service name
 * `groq-webhooks-<service>` when none is set; no metrics or logs pipeline unless asked for by
 * name (`OTEL_METRICS_EXPORTER`, `OTEL_LOGS_EXPORTER`): the processes' metrics are Prometheus
 * and their logs pino lines, so the SDK's default OTLP ones would send nothing but empty
 * requests; and an async context (on demand) only where {@link StartTracingOptions.asyncContext} asks.
 * Loaded by `startTracing` only.
 */
export function startSdk(options: StartTracingOptions): Tracing {
  const { env } = options;
  const named =
    (env.OTEL_SERVICE_NAME ?? '').trim() !== '' ||
    /(^|,)\s*service\.name\s*=/.test(env.OTEL_RESOURCE_ATTRIBUTES ?? '');
  const sdk = new NodeSDK({
    ...(named ? {} : { serviceName: `groq-webhooks-${options.service}` }),
    ...((env.OTEL_METRICS_EXPORTER ?? '').trim() === '' ? { metricReaders: [] } : {}),
    ...((env.OTEL_LOGS_EXPORTER ?? '').trim() === '' ? { logRecordProcessors: [] } : {}),
    // Not the SDK's default AsyncLocalStorage manager, whose async hooks, once entered, run for
    // every promise of the process: the on-demand one keeps them on only while a context is in
    // use (the worker: while a handler runs); the synchronous one costs nothing per await.
    contextManager: options.asyncContext ? new OnDemandContextManager() : new StackContextManager(),
  });
  sdk.start();
  return {
    tracer: trace.getTracer(TRACER_NAME),
    shutdown: async () => {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        sdk.shutdown(),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, SHUTDOWN_FLUSH_MS);
        }),
      ]).finally(() => clearTimeout(timer));
    },
  };
}
