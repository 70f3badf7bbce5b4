import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

// No Docker engine runs here. This runs a Dockerfile's steps by hand instead, on the host, so a
// test can check what an image would hold: container paths (/repo, /out, /app) become folders
// under a scratch root, RUN lines run in `sh` there, COPY copies. Only what the project's
// Dockerfile uses is supported; anything else throws rather than being skipped silently.

/** One instruction, continuation lines joined. */
export interface Instruction {
  keyword: string;
  args: string;
}

/** A build stage. */
export interface Stage {
  /** The image or stage it starts from, with variables as written. */
  from: string;
  name: string | undefined;
  instructions: Instruction[];
}

/** A parsed Dockerfile. */
export interface ParsedDockerfile {
  /** `ARG`s before the first `FROM`, with their defaults. */
  globalArgs: Record<string, string | undefined>;
  stages: Stage[];
}

/** Parses the instructions of a Dockerfile (comments and blank lines dropped). */
export function parseDockerfile(text: string): ParsedDockerfile {
  const lines: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (pending === '' && (line.trim() === '' || line.trim().startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    lines.push((pending + line).trim());
    pending = '';
  }
  const globalArgs: Record<string, string | undefined> = {};
  const stages: Stage[] = [];
  for (const line of lines) {
    const space = line.indexOf(' ');
    const keyword = line.slice(0, space).toUpperCase();
    const args = line.slice(space + 1).trim();
    if (keyword === 'FROM') {
      const match = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!match?.[1]) throw new Error(`cannot parse ${line}`);
      stages.push({ from: match[1], name: match[2], instructions: [] });
    } else if (stages.length === 0) {
      if (keyword !== 'ARG') throw new Error(`only ARG may come before FROM: ${line}`);
      const [name, value] = splitAssignment(args);
      globalArgs[name] = value;
    } else {
      stages.at(-1)?.instructions.push({ keyword, args });
    }
  }
  return { globalArgs, stages };
}

function splitAssignment(text: string): [string, string | undefined] {
  const equals = text.indexOf('=');
  return equals === -1 ? [text, undefined] : [text.slice(0, equals), text.slice(equals + 1)];
}

function expand(text: string, vars: Record<string, string | undefined>): string {
  return text.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string | undefined, b: string | undefined) => {
    const name = (a ?? b) as string;
    return vars[name] ?? '';
  });
}

/** Options of {@link buildByHand}. */
export interface BuildByHandOptions {
  dockerfile: ParsedDockerfile;
  /** The build context (what `COPY . .` copies, less .dockerignore). */
  context: string;
  /** Scratch folder: container paths live under it. */
  scratch: string;
  buildArgs: Record<string, string>;
  /** Environment RUN lines start from, whole (PATH included). */
  env: Record<string, string>;
  /** Called before each RUN line; return false to skip it (e.g. installing pnpm globally). */
  beforeRun?: (command: string) => boolean;
}

/** What the final image would hold and run. */
export interface BuiltImage {
  /** Host folder standing for the image's working directory. */
  workdir: string;
  /** The image's environment (ENV lines of its stages), container paths mapped to host ones. */
  env: Record<string, string>;
  /** The CMD, as an exec-form list. */
  cmd: string[];
  /** The named stages that made the final image, from the base image on. */
  stages: string[];
}

/** Runs the steps that build the Dockerfile's final stage, for `buildArgs`. */
export function buildByHand(options: BuildByHandOptions): BuiltImage {
  const { dockerfile, scratch } = options;
  const args: Record<string, string | undefined> = {
    ...dockerfile.globalArgs,
    ...options.buildArgs,
  };
  const byName = new Map(dockerfile.stages.map((stage) => [stage.name, stage]));
  const host = (path: string): string => join(scratch, 'fs', path);
  const mapPaths = (text: string): string =>
    text.replace(
      /(^|[\s="'])(\/(?:repo|out|app))(?=[/\s"']|$)/g,
      (_, lead: string, path: string) => `${lead}${host(path)}`,
    );
  const built = new Set<string>();

  /** The chain of stages from the base image to `stage`, e.g. runtime → app-worker → final. */
  function chain(stage: Stage): Stage[] {
    const parent = byName.get(expand(stage.from, args));
    return parent === undefined ? [stage] : [...chain(parent), stage];
  }

  function run(stage: Stage): BuiltImage {
    const stages = chain(stage);
    let workdir = '/';
    const env: Record<string, string> = {};
    const stageArgs: Record<string, string | undefined> = {};
    let cmd: string[] = [];
    for (const current of stages) {
      for (const { keyword, args: text } of current.instructions) {
        const vars = { ...args, ...stageArgs, ...env };
        switch (keyword) {
          case 'ARG': {
            const [name, value] = splitAssignment(text);
            stageArgs[name] = args[name] ?? value;
            break;
          }
          case 'ENV':
            for (const pair of text.split(/\s+/)) {
              const [name, value] = splitAssignment(pair);
              env[name] = mapPaths(expand(value ?? '', vars));
            }
            break;
          case 'WORKDIR':
            workdir = text;
            mkdirSync(host(workdir), { recursive: true });
            break;
          case 'COPY':
            copy(text, host(workdir));
            break;
          case 'RUN': {
            if (options.beforeRun?.(text) === false) break;
            try {
              execFileSync('sh', ['-c', mapPaths(text)], {
                cwd: host(workdir),
                env: { ...options.env, ...stringsOf({ ...args, ...stageArgs }), ...env },
                stdio: 'pipe',
                encoding: 'utf8',
              });
            } catch (error) {
              const { stdout, stderr } = error as { stdout?: string; stderr?: string };
              throw new Error(`RUN ${text} failed:\n${stdout ?? ''}${stderr ?? ''}`, {
                cause: error,
              });
            }
            break;
          }
          case 'USER':
            break;
          case 'CMD':
            cmd = JSON.parse(text) as string[];
            break;
          default:
            throw new Error(`unsupported instruction ${keyword} ${text}`);
        }
      }
      if (current.name !== undefined) built.add(current.name);
    }
    return {
      workdir: host(workdir),
      env,
      cmd,
      stages: stages.flatMap((current) => (current.name === undefined ? [] : [current.name])),
    };
  }

  function copy(text: string, workdir: string): void {
    const parts = text.split(/\s+/);
    const from = parts.find((part) => part.startsWith('--from='))?.slice('--from='.length);
    const [source, target] = parts.filter((part) => !part.startsWith('--'));
    if (source === undefined || target === undefined) throw new Error(`cannot parse COPY ${text}`);
    if (from === undefined) {
      if (source !== '.' || target !== '.') throw new Error(`unsupported COPY ${text}`);
      copyContext(options.context, workdir);
      return;
    }
    const stage = byName.get(from);
    if (stage === undefined) throw new Error(`no stage ${from}`);
    if (!built.has(from)) run(stage);
    cpSync(host(source), host(target), { recursive: true, verbatimSymlinks: true });
  }

  const final = dockerfile.stages.at(-1);
  if (final === undefined) throw new Error('no stage');
  return run(final);
}

function stringsOf(values: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(values).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

/** Copies the build context, leaving out what .dockerignore names. */
function copyContext(context: string, target: string): void {
  const patterns = readFileSync(join(context, '.dockerignore'), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map(globToRegExp);
  const ignored = (path: string) => patterns.some((pattern) => pattern.test(path));
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      const rel = relative(context, path);
      if (ignored(rel)) continue;
      if (entry.isDirectory()) walk(path);
      else cpSync(path, join(target, rel), { verbatimSymlinks: true });
    }
  };
  walk(context);
}

/** A .dockerignore pattern (`**`, `*`, literal names) as a regular expression on a path. */
function globToRegExp(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i += 1) {
    const char = pattern[i] as string;
    if (pattern.startsWith('**/', i)) {
      source += '(?:.*/)?';
      i += 2;
    } else if (char === '*') source += '[^/]*';
    else if (char === '?') source += '[^/]';
    else source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}
