/**
 * The SystemTap extension: starts `stap-ls serve` through vscode-languageclient
 * for `systemtap` documents, passes the `stap-ls` settings to it, and adds the
 * commands Run Script, Stop, Run to Pass N, List Probes, Show Translated C and
 * Doctor (each a workspace/executeCommand request to the server), an output
 * channel that shows a running script's output, and a status-bar item with
 * the run's state.  Command lines and settings are built in ./config.
 */
import * as vscode from 'vscode';
import {
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  TransportKind,
} from 'vscode-languageclient/node';
import {
  findExecutable,
  listProbesArguments,
  missingServerMessage,
  normalizeSettings,
  PASSES,
  parsePass,
  RunOptions,
  runArguments,
  RunStatus,
  SECTION,
  ServerCommands,
  ServerNotifications,
  serverCommandLine,
  StapLsSettings,
  statusText,
} from './config';

let client: LanguageClient | undefined;
let output: vscode.OutputChannel;
let status: vscode.StatusBarItem;
let currentRun: string | number | undefined;

function readSettings(): StapLsSettings {
  const raw = vscode.workspace.getConfiguration(SECTION);
  const obj: Record<string, unknown> = {};
  for (const key of ['command', 'tapsetDirs', 'kernelRelease', 'arch', 'guru', 'privilege',
                     'scriptArgs', 'defines', 'stapPath', 'binarySearchPaths', 'engine']) {
    obj[key] = raw.get(key);
  }
  const { settings, problems } = normalizeSettings(obj);
  for (const p of problems) {
    output.appendLine(`settings: ${p}`);
  }
  return settings;
}

async function startClient(context: vscode.ExtensionContext): Promise<void> {
  const settings = readSettings();
  const { command, args } = serverCommandLine(settings);
  if (findExecutable(command) === undefined) {
    void vscode.window.showErrorMessage(missingServerMessage(settings, 'not found on PATH'));
    return;
  }
  const serverOptions: ServerOptions = { command, args, transport: TransportKind.stdio };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ language: 'systemtap' }],
    initializationOptions: settings,
    synchronize: { configurationSection: SECTION },
    outputChannelName: 'SystemTap Language Server',
    middleware: {
      workspace: {
        // answer workspace/configuration for our section with checked settings
        configuration: async (params, token, next) => {
          const answers = await next(params, token);
          if (!Array.isArray(answers)) {
            return answers;
          }
          return params.items.map((item, i) =>
            item.section === SECTION ? readSettings() : answers[i]);
        },
      },
    },
  };
  client = new LanguageClient('stap-ls', 'SystemTap Language Server', serverOptions, clientOptions);
  context.subscriptions.push(
    client.onNotification(ServerNotifications.output,
      (p: { runId: string | number; stream: string; text: string }) => {
        output.append(p.stream === 'stderr' ? p.text.replace(/^/gm, '! ').replace(/! $/, '') : p.text);
      }),
    client.onNotification(ServerNotifications.runStatus, (s: RunStatus) => {
      status.text = statusText(s);
      status.show();
      if (s.state === 'exited') {
        output.appendLine(`[${statusText(s)}]`);
        if (s.runId === currentRun) {
          currentRun = undefined;
        }
      }
    }),
  );
  try {
    await client.start();
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    void vscode.window.showErrorMessage(missingServerMessage(settings, reason));
    client = undefined;
  }
}

async function execute<T>(command: string, args: unknown[]): Promise<T | undefined> {
  if (client === undefined) {
    void vscode.window.showErrorMessage(
      'SystemTap: the language server is not running; see "stap-ls.command" and the Doctor command.');
    return undefined;
  }
  try {
    return await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args }) as T;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    void vscode.window.showErrorMessage(`SystemTap: ${command} failed: ${reason}`);
    return undefined;
  }
}

function activeScript(): vscode.TextDocument | undefined {
  const doc = vscode.window.activeTextEditor?.document;
  if (doc === undefined || doc.languageId !== 'systemtap') {
    void vscode.window.showWarningMessage('SystemTap: open a SystemTap script (.stp) first.');
    return undefined;
  }
  return doc;
}

async function runScript(opts: RunOptions = {}): Promise<void> {
  const doc = activeScript();
  if (doc === undefined) {
    return;
  }
  if (doc.isDirty) {
    await doc.save();
  }
  const args = runArguments(doc.uri.toString(), readSettings(), opts);
  output.clear();
  output.show(true);
  output.appendLine(`[run ${doc.fileName}${opts.lastPass ? ` to pass ${opts.lastPass}` : ''}]`);
  const res = await execute<{ runId: string | number }>(ServerCommands.run, args);
  if (res !== undefined) {
    currentRun = res.runId;
    status.text = 'stap: starting';
    status.show();
  }
}

async function stop(): Promise<void> {
  if (currentRun === undefined) {
    void vscode.window.showInformationMessage('SystemTap: no script is running.');
    return;
  }
  await execute(ServerCommands.stop, [{ runId: currentRun }]);
}

async function runToPass(): Promise<void> {
  const pick = await vscode.window.showQuickPick(
    PASSES.map((p) => ({ label: String(p.pass), description: p.label })),
    { placeHolder: 'Stop after which pass?' });
  const pass = parsePass(pick?.label);
  if (pass !== undefined) {
    await runScript({ lastPass: pass });
  }
}

async function listProbes(): Promise<void> {
  const pattern = await vscode.window.showInputBox({
    prompt: 'Probe point pattern (as for stap -l)',
    value: 'kernel.function("vfs_*")',
    validateInput: (v) => (v.trim() === '' ? 'a pattern is needed' : undefined),
  });
  if (pattern === undefined) {
    return;
  }
  const mode = await vscode.window.showQuickPick(
    [{ label: '-l', description: 'probe points only', verbose: false },
     { label: '-L', description: 'with their target variables', verbose: true }],
    { placeHolder: 'List with -l or -L?' });
  if (mode === undefined) {
    return;
  }
  const lines = await execute<string[]>(ServerCommands.listProbes, listProbesArguments(pattern, mode.verbose));
  if (lines === undefined) {
    return;
  }
  if (lines.length === 0) {
    void vscode.window.showInformationMessage(`SystemTap: no probe points match ${pattern}`);
    return;
  }
  const chosen = await vscode.window.showQuickPick(lines, { placeHolder: `${lines.length} probe points` });
  const editor = vscode.window.activeTextEditor;
  if (chosen !== undefined && editor !== undefined && editor.document.languageId === 'systemtap') {
    const probe = chosen.split(/\s+/)[0];
    await editor.edit((e) => e.insert(editor.selection.active, probe));
  }
}

async function showTranslatedC(): Promise<void> {
  const doc = activeScript();
  if (doc === undefined) {
    return;
  }
  const res = await execute<{ text: string }>(ServerCommands.translatedC, [{ uri: doc.uri.toString() }]);
  if (res !== undefined) {
    const c = await vscode.workspace.openTextDocument({ language: 'c', content: res.text });
    await vscode.window.showTextDocument(c, { preview: true, viewColumn: vscode.ViewColumn.Beside });
  }
}

async function doctor(): Promise<void> {
  const res = await execute<{ text: string }>(ServerCommands.doctor, []);
  if (res !== undefined) {
    output.show(true);
    output.appendLine(res.text);
  }
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel('SystemTap');
  status = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 10);
  status.command = 'systemtap.stop';
  status.tooltip = 'SystemTap run (click to stop)';
  context.subscriptions.push(
    output,
    status,
    vscode.commands.registerCommand('systemtap.runScript', () => runScript()),
    vscode.commands.registerCommand('systemtap.stop', stop),
    vscode.commands.registerCommand('systemtap.runToPass', runToPass),
    vscode.commands.registerCommand('systemtap.listProbes', listProbes),
    vscode.commands.registerCommand('systemtap.showTranslatedC', showTranslatedC),
    vscode.commands.registerCommand('systemtap.doctor', doctor),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (e.affectsConfiguration(`${SECTION}.command`)) {
        await client?.stop();
        client = undefined;
        await startClient(context);
      }
    }),
  );
  await startClient(context);
}

export async function deactivate(): Promise<void> {
  await client?.stop();
}
