/**
 * Teardown that survives failures and Ctrl-C. Everything the harness creates on the system
 * (labs: namespaces, processes, scratch dirs) registers an undo step here; `runCleanups()` runs them in
 * reverse order. On SIGINT/SIGTERM/uncaught errors the tracked child processes are killed by
 * PID first, then the undo steps run synchronously, then the process exits.
 */

import { killAllTracked } from './proc';

type Undo = { label: string; sync: () => void };
const undos: Undo[] = [];

/** Registers a synchronous undo step; returns a function that runs it now (once) and unregisters it. */
export function onCleanup(label: string, sync: () => void): () => void {
  const u: Undo = { label, sync };
  undos.push(u);
  return () => {
    const i = undos.indexOf(u);
    if (i >= 0) {
      undos.splice(i, 1);
      safe(u);
    }
  };
}

function safe(u: Undo): void {
  try {
    u.sync();
  } catch (e) {
    process.stderr.write(`\ncleanup "${u.label}" failed: ${String(e)}\n`);
  }
}

export function runCleanups(): void {
  killAllTracked();
  while (undos.length) safe(undos.pop()!);
}

let installed = false;
/** Installs the signal/exception hooks once. */
export function installCleanupHooks(onSignal?: () => void): void {
  if (installed) return;
  installed = true;
  const bye = (code: number) => () => {
    onSignal?.();
    process.stderr.write('\ninterrupted: cleaning up…\n');
    runCleanups();
    process.exit(code);
  };
  process.once('SIGINT', bye(130));
  process.once('SIGTERM', bye(143));
  process.once('SIGHUP', bye(129));
  process.on('uncaughtException', (e) => {
    process.stderr.write(`\nuncaught: ${e.stack ?? e}\n`);
    runCleanups();
    process.exit(1);
  });
  process.on('unhandledRejection', (e) => {
    process.stderr.write(`\nunhandled rejection: ${(e as Error)?.stack ?? e}\n`);
    runCleanups();
    process.exit(1);
  });
  process.on('exit', () => runCleanups());
}
