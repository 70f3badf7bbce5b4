import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseDockerfile } from './support/dockerfile.js';
import { ROOT } from './support/paths.js';

// No Docker engine runs here: the compose file and Dockerfile are checked by parsing them.

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string; args?: Record<string, string> };
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test: string[] };
  stop_grace_period?: string;
  container_name?: string;
  depends_on?: Record<string, { condition: string }>;
  profiles?: string[];
}

const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

function seconds(duration: string | undefined): number {
  const match = /^([0-9]+)s$/.exec(duration ?? '');
  if (!match) throw new Error(`not a duration in seconds: ${duration}`);
  return Number(match[1]);
}

function service(name: string): Service {
  const found = compose.services[name];
  if (!found) throw new Error(`no service ${name}`);
  return found;
}

describe('docker-compose.yml', () => {
  it('runs Redis, PostgreSQL, ingest, worker and dashboard, and Jaeger only in the tracing profile', () => {
    expect(Object.keys(compose.services).sort()).toEqual([
      'dashboard',
      'ingest',
      'jaeger',
      'postgres',
      'redis',
      'worker',
    ]);
    for (const name of ['dashboard', 'ingest', 'postgres', 'redis', 'worker']) {
      expect(service(name).profiles).toBeUndefined();
    }
    expect(service('jaeger').profiles).toEqual(['tracing']);
  });

  it('keeps the event history in PostgreSQL on a volume, and points every app at it', () => {
    const postgres = service('postgres');
    expect(postgres.image).toMatch(/^postgres:1[4-9]/);
    expect(postgres.volumes).toContain('postgres-data:/var/lib/postgresql/data');
    expect(Object.keys(compose.volumes)).toContain('postgres-data');
    expect(postgres.healthcheck?.test.join(' ')).toContain('pg_isready');
    for (const name of ['ingest', 'worker', 'dashboard']) {
      expect(service(name).environment?.ARCHIVE_DATABASE_URL).toMatch(
        /^postgres:\/\/groq:.+@postgres:5432\/groq_webhooks$/,
      );
    }
    expect(service('worker').depends_on?.postgres?.condition).toBe('service_healthy');
    expect(service('worker').environment?.ARCHIVE_RETENTION_DAYS).toMatch(
      /ARCHIVE_RETENTION_DAYS:-30/,
    );
  });

  it("gives Jaeger a pinned image and keeps its UI on the host's loopback", () => {
    const jaeger = service('jaeger');
    expect(jaeger.image).toMatch(/^jaegertracing\/jaeger:\d+\.\d+\.\d+$/);
    expect(jaeger.ports).toEqual(['127.0.0.1:16686:16686']);
    // The OTLP/HTTP receiver listens where the apps reach it (http://jaeger:4318).
    expect(jaeger.command?.join(' ')).toContain(
      'receivers.otlp.protocols.http.endpoint=0.0.0.0:4318',
    );
    // No app waits for it: without the profile the service does not exist.
    for (const name of ['ingest', 'worker', 'dashboard']) {
      expect(Object.keys(service(name).depends_on ?? {})).not.toContain('jaeger');
    }
  });

  it.each(['ingest', 'worker'])(
    'passes the OpenTelemetry variables to %s, empty by default: tracing stays off unless set',
    (name) => {
      const environment = service(name).environment ?? {};
      for (const variable of [
        'OTEL_EXPORTER_OTLP_ENDPOINT',
        'OTEL_TRACES_SAMPLER',
        'OTEL_TRACES_SAMPLER_ARG',
      ]) {
        // Compose's `${NAME:-}`: the host's value, or empty.
        expect(environment[variable]).toBe(`\${${variable}:-}`);
      }
    },
  );

  it('gives Redis AOF everysec, noeviction, a volume and a healthcheck', () => {
    const redis = service('redis');
    const command = (redis.command ?? []).join(' ');
    expect(command).toContain('--appendonly yes');
    expect(command).toContain('--appendfsync everysec');
    expect(command).toContain('--maxmemory-policy noeviction');
    expect(redis.volumes?.some((volume) => volume.endsWith(':/data'))).toBe(true);
    expect(Object.keys(compose.volumes)).toContain('redis-data');
    expect(redis.healthcheck?.test.join(' ')).toContain('redis-cli ping');
  });

  it.each(['ingest', 'worker', 'dashboard'])(
    'builds %s from the Dockerfile with a healthcheck and Redis',
    (name) => {
      const app = service(name);
      expect(app.build).toMatchObject({
        context: '.',
        dockerfile: 'Dockerfile',
        args: { APP: name },
      });
      expect(app.environment?.REDIS_URL).toBe('redis://redis:6379');
      expect(app.healthcheck?.test.join(' ')).toContain('/healthz');
      expect(app.depends_on?.redis?.condition).toBe('service_healthy');
    },
  );

  it('gives every app longer to stop than its own shutdown deadline', () => {
    // ingest drains for at most 10 s; the worker's grace is SHUTDOWN_GRACE_MS, then it closes.
    expect(seconds(service('ingest').stop_grace_period)).toBeGreaterThan(10);
    const worker = service('worker');
    const graceSeconds = Number(worker.environment?.SHUTDOWN_GRACE_MS) / 1000;
    expect(seconds(worker.stop_grace_period)).toBeGreaterThan(graceSeconds + 5);
    expect(seconds(service('dashboard').stop_grace_period)).toBeGreaterThan(10);
  });

  it('mounts nothing into the worker: its image carries the handlers and their dependencies', () => {
    const worker = service('worker');
    expect(worker.volumes).toBeUndefined();
    // An empty HANDLERS_MODULE would replace the image's handlers with the built-in examples.
    expect(worker.environment?.HANDLERS_MODULE).toBeUndefined();
  });

  it('lets the worker scale: no host ports and no fixed container name', () => {
    const worker = service('worker');
    expect(worker.ports).toBeUndefined();
    expect(worker.container_name).toBeUndefined();
  });

  it('requires the secrets instead of inventing them, with the SPEC variable names', () => {
    expect(service('ingest').environment?.GROQ_WEBHOOK_SECRET).toMatch(
      /^\$\{GROQ_WEBHOOK_SECRET:\?/,
    );
    expect(service('dashboard').environment?.ADMIN_TOKEN).toMatch(/^\$\{ADMIN_TOKEN:\?/);
    expect(service('ingest').ports).toEqual(['3000:3000']);
    // Metrics are on a port of their own, which is not published.
    expect(service('ingest').environment?.METRICS_PORT).toBe('9464');
  });

  it('keeps the dashboard off the public interface', () => {
    expect(service('dashboard').ports).toEqual(['127.0.0.1:3001:3001']);
  });
});

describe('Dockerfile', () => {
  const stages = dockerfile.split('\n').filter((line) => line.startsWith('FROM '));

  it('is multi-stage on Node 20', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    // Every image stage is on Node 20; the others start from one of them.
    const names = new Set(parseDockerfile(dockerfile).stages.map((stage) => stage.name));
    for (const stage of stages) {
      const base = stage.split(/\s+/)[1] ?? '';
      if (!names.has(base) && !base.startsWith('app-$')) expect(stage).toMatch(/^FROM node:20/);
    }
  });

  it('installs from the lockfile and ships production dependencies only', () => {
    expect(dockerfile).toContain('pnpm install --frozen-lockfile');
    expect(dockerfile).toMatch(/deploy --prod/);
    expect(dockerfile).toContain('COPY --from=build');
  });

  it('runs as a non-root user', () => {
    const runtime = dockerfile.slice(dockerfile.indexOf(' AS runtime'));
    expect(runtime).toMatch(/^USER (?!root)\S+/m);
    expect(runtime).toContain('CMD ["node", "dist/main.js"]');
  });

  it('ends on the stage of the app chosen by APP; only the worker names a handlers module', () => {
    const parsed = parseDockerfile(dockerfile);
    expect(parsed.globalArgs.APP).toBe('ingest');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a Dockerfile variable, as written
    expect(parsed.stages.at(-1)?.from).toBe('app-${APP}');
    for (const app of ['ingest', 'worker', 'dashboard']) {
      const stage = parsed.stages.find((candidate) => candidate.name === `app-${app}`);
      expect(stage?.from).toBe('runtime');
      const env = stage?.instructions.filter((instruction) => instruction.keyword === 'ENV');
      expect(env?.map((instruction) => instruction.args)).toEqual(
        app === 'worker' ? ['HANDLERS_MODULE=/app/handlers/src/index.ts'] : [],
      );
    }
  });

  it('never copies local secrets or build output into the context', () => {
    const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8');
    for (const entry of ['.local', '**/node_modules', '**/dist', 'packs']) {
      expect(ignore).toContain(entry);
    }
  });
});
