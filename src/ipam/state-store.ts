/**
 * Crash-safe JSON state files under `stateDir` (default /var/lib/vxmesh), as a seam for IPAM
 * and the endpoint registry over the shared src/state/atomic.ts:
 *
 *   write: JSON → temporary file → fsync → rename over `<file>` → fsync the directory
 * so after a crash or power loss the file is either the old or the new version, never a torn
 * mix. Reading a file that exists but is not valid JSON of the expected version is a
 * `StateError` naming the file (never a silent reset); a missing file is empty state.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StateError, SystemError, ERR_STATE_WRITE } from '../errors';
import { writeJsonAtomic } from '../state/atomic';

export const DEFAULT_STATE_DIR = '/var/lib/vxmesh';

/** The seam IPAM and the endpoint registry persist through (the twin below keeps it in memory). */
export interface StateStore {
  /** The document, or null when there is none yet. Throws StateError. */
  read(name: string): unknown | null;
  /** Replaces the document atomically. Throws SystemError ERR_VXMESH_STATE_WRITE. */
  write(name: string, doc: unknown): void;
  /** Where documents live (for messages). */
  readonly where: string;
}

/** Every document carries `{version: 1, ...}`; `check` validates the rest (returns a reason or null). */
export function readVersioned<T>(store: StateStore, name: string, check: (doc: Record<string, unknown>) => string | null): T | null {
  const doc = store.read(name);
  if (doc === null) return null;
  const file = path.join(store.where, name);
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new StateError(file, 'not a JSON object');
  const d = doc as Record<string, unknown>;
  if (d.version !== 1) throw new StateError(file, `unknown version ${JSON.stringify(d.version)}`);
  const why = check(d);
  if (why) throw new StateError(file, why);
  return d as T;
}

export class FileStateStore implements StateStore {
  constructor(readonly where: string) {}

  read(name: string): unknown | null {
    const file = path.join(this.where, name);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return null;
      throw new StateError(file, `cannot read: ${code ?? (e as Error).message}`);
    }
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new StateError(file, `not JSON: ${(e as Error).message}`);
    }
  }

  write(name: string, doc: unknown): void {
    const file = path.join(this.where, name);
    try {
      writeJsonAtomic(file, doc);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new SystemError(ERR_STATE_WRITE, `cannot write state file ${file}: ${err.code ?? err.message}`, err.syscall ?? 'write', err.code ?? 'EIO');
    }
  }
}

/** In-memory twin: same contract, documents kept as JSON text (so they are copies, as on disk). */
export class MemoryStateStore implements StateStore {
  readonly where = 'memory:';
  readonly files = new Map<string, string>();
  writes = 0;
  read(name: string): unknown | null {
    const t = this.files.get(name);
    if (t === undefined) return null;
    try {
      return JSON.parse(t);
    } catch (e) {
      throw new StateError(path.join(this.where, name), `not JSON: ${(e as Error).message}`);
    }
  }
  write(name: string, doc: unknown): void {
    this.files.set(name, JSON.stringify(doc));
    this.writes++;
  }
}
