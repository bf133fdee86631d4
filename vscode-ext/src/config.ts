/**
 * Settings and command lines for the stap-ls extension, without `vscode`.
 *
 * Everything here is plain data and plain functions so it can be unit-tested
 * with `node --test` outside VS Code: reading the `stap-ls` settings section
 * into a checked `StapLsSettings` object (sent to the server as
 * initializationOptions and as the answer to workspace/configuration),
 * building the server's command line, finding it on PATH, and building the
 * arguments of the server's workspace/executeCommand commands.
 */
import * as fs from 'fs';
import * as path from 'path';

export const SECTION = 'stap-ls';

/** workspace/executeCommand names the server implements. */
export const ServerCommands = {
  run: 'stap-ls.run',
  stop: 'stap-ls.stop',
  listProbes: 'stap-ls.listProbes',
  translatedC: 'stap-ls.translatedC',
  doctor: 'stap-ls.doctor',
} as const;

/** Notifications the server sends. */
export const ServerNotifications = {
  output: 'stap-ls/output',
  runStatus: 'stap-ls/runStatus',
} as const;

export type Privilege = 'stapdev' | 'stapsys' | 'stapusr';
export type Engine = 'auto' | 'stap' | 'bpf';

export interface StapLsSettings {
  command: string[];
  tapsetDirs: string[];
  kernelRelease: string;
  arch: string;
  guru: boolean;
  privilege: Privilege;
  scriptArgs: string[];
  defines: string[];
  stapPath: string;
  binarySearchPaths: string[];
  engine: Engine;
}

export const DEFAULTS: Readonly<StapLsSettings> = Object.freeze({
  command: ['stap-ls', 'serve', '--daemon'],
  tapsetDirs: [],
  kernelRelease: '',
  arch: '',
  guru: false,
  privilege: 'stapdev',
  scriptArgs: [],
  defines: [],
  stapPath: '',
  binarySearchPaths: [],
  engine: 'auto',
});

const PRIVILEGES: readonly Privilege[] = ['stapdev', 'stapsys', 'stapusr'];
const ENGINES: readonly Engine[] = ['auto', 'stap', 'bpf'];

export interface Normalized {
  settings: StapLsSettings;
  /** One line per setting that was ignored, saying why. */
  problems: string[];
}

function stringArray(raw: unknown, key: string, fallback: string[], problems: string[]): string[] {
  if (raw === undefined || raw === null) {
    return [...fallback];
  }
  if (Array.isArray(raw) && raw.every((x) => typeof x === 'string')) {
    return [...raw];
  }
  problems.push(`${SECTION}.${key} must be a list of strings; using ${JSON.stringify(fallback)}`);
  return [...fallback];
}

function str(raw: unknown, key: string, fallback: string, problems: string[]): string {
  if (raw === undefined || raw === null) {
    return fallback;
  }
  if (typeof raw === 'string') {
    return raw;
  }
  problems.push(`${SECTION}.${key} must be a string; using ${JSON.stringify(fallback)}`);
  return fallback;
}

function oneOf<T extends string>(raw: unknown, key: string, allowed: readonly T[], fallback: T,
                                 problems: string[]): T {
  if (raw === undefined || raw === null) {
    return fallback;
  }
  if (typeof raw === 'string' && (allowed as readonly string[]).includes(raw)) {
    return raw as T;
  }
  problems.push(`${SECTION}.${key} must be one of ${allowed.join(', ')}; using ${fallback}`);
  return fallback;
}

/** Read a raw settings object (what `getConfiguration('stap-ls')` holds). */
export function normalizeSettings(raw: Record<string, unknown> | undefined | null): Normalized {
  const r = raw ?? {};
  const problems: string[] = [];
  let command = stringArray(r.command, 'command', DEFAULTS.command, problems);
  if (command.length === 0 || command[0].trim() === '') {
    problems.push(`${SECTION}.command is empty; using ${JSON.stringify(DEFAULTS.command)}`);
    command = [...DEFAULTS.command];
  }
  let guru = DEFAULTS.guru;
  if (typeof r.guru === 'boolean') {
    guru = r.guru;
  } else if (r.guru !== undefined && r.guru !== null) {
    problems.push(`${SECTION}.guru must be true or false; using false`);
  }
  const settings: StapLsSettings = {
    command,
    tapsetDirs: stringArray(r.tapsetDirs, 'tapsetDirs', DEFAULTS.tapsetDirs, problems),
    kernelRelease: str(r.kernelRelease, 'kernelRelease', DEFAULTS.kernelRelease, problems),
    arch: str(r.arch, 'arch', DEFAULTS.arch, problems),
    guru,
    privilege: oneOf(r.privilege, 'privilege', PRIVILEGES, DEFAULTS.privilege, problems),
    scriptArgs: stringArray(r.scriptArgs, 'scriptArgs', DEFAULTS.scriptArgs, problems),
    defines: stringArray(r.defines, 'defines', DEFAULTS.defines, problems),
    stapPath: str(r.stapPath, 'stapPath', DEFAULTS.stapPath, problems),
    binarySearchPaths: stringArray(r.binarySearchPaths, 'binarySearchPaths',
                                   DEFAULTS.binarySearchPaths, problems),
    engine: oneOf(r.engine, 'engine', ENGINES, DEFAULTS.engine, problems),
  };
  return { settings, problems };
}

export interface ServerCommandLine {
  command: string;
  args: string[];
}

/** The program and arguments that start the server (LSP on stdio). */
export function serverCommandLine(settings: StapLsSettings): ServerCommandLine {
  const [command, ...args] = settings.command;
  return { command, args };
}

/**
 * Where `command` would be run from: itself when it contains a slash and is
 * executable, else the first executable match on PATH; undefined if none.
 */
export function findExecutable(command: string, envPath: string = process.env.PATH ?? '',
                               cwd: string = process.cwd()): string | undefined {
  const isExec = (p: string): boolean => {
    try {
      const st = fs.statSync(p);
      if (!st.isFile()) {
        return false;
      }
      fs.accessSync(p, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (command.includes('/')) {
    const p = path.resolve(cwd, command);
    return isExec(p) ? p : undefined;
  }
  for (const dir of envPath.split(path.delimiter)) {
    if (dir === '') {
      continue;
    }
    const p = path.join(dir, command);
    if (isExec(p)) {
      return p;
    }
  }
  return undefined;
}

/** The message shown when the server program cannot be found or started. */
export function missingServerMessage(settings: StapLsSettings, reason?: string): string {
  const shown = settings.command.join(' ');
  const why = reason ? ` (${reason})` : '';
  return `SystemTap: cannot start the language server "${shown}"${why}. ` +
    'Install stap_ls (scripts/setup.sh puts it in .venv/bin/stap-ls) and put it on PATH, ' +
    `or set "${SECTION}.command" to its full path, e.g. ["/path/to/.venv/bin/stap-ls", "serve"].`;
}

export interface RunOptions {
  lastPass?: number;
  engine?: Engine;
  args?: string[];
}

export interface RunParams {
  uri: string;
  lastPass?: number;
  engine?: string;
  args?: string[];
}

/** Arguments of `stap-ls.run`: the script, and what differs from settings. */
export function runArguments(uri: string, settings: StapLsSettings, opts: RunOptions = {}): [RunParams] {
  const p: RunParams = { uri };
  if (opts.lastPass !== undefined) {
    if (!Number.isInteger(opts.lastPass) || opts.lastPass < 1 || opts.lastPass > 5) {
      throw new RangeError(`last pass must be 1 to 5, not ${opts.lastPass}`);
    }
    p.lastPass = opts.lastPass;
  }
  p.engine = opts.engine ?? settings.engine;
  p.args = [...(opts.args ?? settings.scriptArgs)];
  return [p];
}

/** stap's passes, for the "Run to Pass N" picker. */
export const PASSES: ReadonlyArray<{ pass: number; label: string }> = [
  { pass: 1, label: 'parse' },
  { pass: 2, label: 'elaborate' },
  { pass: 3, label: 'translate to C' },
  { pass: 4, label: 'compile' },
  { pass: 5, label: 'run' },
];

/** Read a pass number typed or picked by the user; undefined if not 1-5. */
export function parsePass(text: string | undefined): number | undefined {
  if (text === undefined) {
    return undefined;
  }
  const m = /^\s*([1-5])\b/.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Arguments of `stap-ls.listProbes`; a blank pattern is refused. */
export function listProbesArguments(pattern: string, verbose: boolean): [{ pattern: string; verbose: boolean }] {
  const p = pattern.trim();
  if (p === '') {
    throw new Error('a probe pattern is needed, e.g. kernel.function("vfs_*")');
  }
  return [{ pattern: p, verbose }];
}

export interface RunStatus {
  runId: string | number;
  state: 'pass' | 'running' | 'exited';
  pass?: number;
  message?: string;
  exitCode?: number;
}

/** Status-bar text for a run's status notification. */
export function statusText(s: RunStatus): string {
  switch (s.state) {
    case 'pass':
      return `stap: pass ${s.pass ?? '?'}${s.message ? ` (${s.message})` : ''}`;
    case 'running':
      return 'stap: running';
    case 'exited':
      return s.exitCode === undefined || s.exitCode === 0
        ? `stap: exited${s.message ? ` (${s.message})` : ''}`
        : `stap: failed (exit ${s.exitCode})${s.message ? `: ${s.message}` : ''}`;
    default:
      return 'stap: ?';
  }
}
