/**
 * Unit tests of src/config.ts (settings, server command line, executeCommand
 * arguments), run with node's own test runner on the compiled JavaScript:
 * `npm run compile && node --test out/test/`.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  DEFAULTS,
  findExecutable,
  listProbesArguments,
  missingServerMessage,
  normalizeSettings,
  parsePass,
  runArguments,
  serverCommandLine,
  statusText,
} from '../src/config';

test('defaults when nothing is set', () => {
  const { settings, problems } = normalizeSettings(undefined);
  assert.deepEqual(settings, DEFAULTS);
  assert.deepEqual(problems, []);
  assert.deepEqual(serverCommandLine(settings), { command: 'stap-ls', args: ['serve', '--daemon'] });
});

test('every setting is carried through', () => {
  const raw = {
    command: ['/opt/stap-ls/bin/stap-ls', 'serve', '--log', '/tmp/x'],
    tapsetDirs: ['/t1', '/t2'], kernelRelease: '6.1.0-56-amd64', arch: 'x86_64', guru: true,
    privilege: 'stapusr', scriptArgs: ['a', '1'], defines: ['MAXACTION=100'],
    stapPath: '/usr/bin/stap', binarySearchPaths: ['/usr/lib'], engine: 'bpf',
  };
  const { settings, problems } = normalizeSettings(raw);
  assert.deepEqual(problems, []);
  assert.deepEqual(settings, raw);
  assert.deepEqual(serverCommandLine(settings),
                   { command: '/opt/stap-ls/bin/stap-ls', args: ['serve', '--log', '/tmp/x'] });
});

test('bad values fall back with a message naming the setting', () => {
  const { settings, problems } = normalizeSettings({
    command: [], tapsetDirs: '/not/a/list', privilege: 'root', engine: 'kprobes', guru: 'yes',
    kernelRelease: 6,
  });
  assert.deepEqual(settings.command, ['stap-ls', 'serve', '--daemon']);
  assert.deepEqual(settings.tapsetDirs, []);
  assert.equal(settings.privilege, 'stapdev');
  assert.equal(settings.engine, 'auto');
  assert.equal(settings.guru, false);
  assert.equal(settings.kernelRelease, '');
  for (const key of ['command', 'tapsetDirs', 'privilege', 'engine', 'guru', 'kernelRelease']) {
    assert.ok(problems.some((p) => p.startsWith(`stap-ls.${key} `)), `no problem reported for ${key}`);
  }
});

test('settings are not shared with DEFAULTS', () => {
  const { settings } = normalizeSettings({});
  settings.command.push('--x');
  assert.deepEqual(DEFAULTS.command, ['stap-ls', 'serve', '--daemon']);
});

test('findExecutable searches PATH and honours paths with a slash', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stapls-'));
  const exe = path.join(dir, 'stap-ls');
  fs.writeFileSync(exe, '#!/bin/sh\n');
  fs.chmodSync(exe, 0o755);
  const plain = path.join(dir, 'notexec');
  fs.writeFileSync(plain, '');
  assert.equal(findExecutable('stap-ls', `/nonexistent${path.delimiter}${dir}`), exe);
  assert.equal(findExecutable('stap-ls', '/nonexistent'), undefined);
  assert.equal(findExecutable('notexec', dir), undefined);
  assert.equal(findExecutable(exe, ''), exe);
  assert.equal(findExecutable('./stap-ls', '', dir), exe);
  assert.equal(findExecutable(dir, dir), undefined, 'a directory is not a program');
  fs.rmSync(dir, { recursive: true });
});

test('the missing-server message names the command and the setting', () => {
  const msg = missingServerMessage(normalizeSettings({ command: ['my-ls', 'serve'] }).settings,
                                   'not found on PATH');
  assert.match(msg, /"my-ls serve"/);
  assert.match(msg, /not found on PATH/);
  assert.match(msg, /"stap-ls\.command"/);
});

test('run arguments follow the server contract', () => {
  const s = normalizeSettings({ engine: 'stap', scriptArgs: ['x'] }).settings;
  assert.deepEqual(runArguments('file:///a.stp', s),
                   [{ uri: 'file:///a.stp', engine: 'stap', args: ['x'] }]);
  assert.deepEqual(runArguments('file:///a.stp', s, { lastPass: 2, engine: 'bpf', args: [] }),
                   [{ uri: 'file:///a.stp', lastPass: 2, engine: 'bpf', args: [] }]);
  assert.throws(() => runArguments('file:///a.stp', s, { lastPass: 6 }), RangeError);
  assert.throws(() => runArguments('file:///a.stp', s, { lastPass: 0 }), RangeError);
});

test('pass numbers from the picker', () => {
  assert.equal(parsePass('2'), 2);
  assert.equal(parsePass(' 5 run'), 5);
  assert.equal(parsePass('6'), undefined);
  assert.equal(parsePass('x'), undefined);
  assert.equal(parsePass(undefined), undefined);
});

test('listProbes arguments', () => {
  assert.deepEqual(listProbesArguments(' kernel.function("vfs_*") ', true),
                   [{ pattern: 'kernel.function("vfs_*")', verbose: true }]);
  assert.throws(() => listProbesArguments('  ', false), /pattern is needed/);
});

test('status-bar text for run states', () => {
  assert.equal(statusText({ runId: 1, state: 'pass', pass: 2 }), 'stap: pass 2');
  assert.equal(statusText({ runId: 1, state: 'running' }), 'stap: running');
  assert.equal(statusText({ runId: 1, state: 'exited', exitCode: 0 }), 'stap: exited');
  assert.equal(statusText({ runId: 1, state: 'exited', exitCode: 1, message: 'pass 4 failed' }),
               'stap: failed (exit 1): pass 4 failed');
});
