/**
 * What the agent remembers between runs: which bridges vxmesh created (so a restart — clean or
 * after a crash — reuses them with their container ports, and only `vxmesh cleanup` or removing a
 * network from the config deletes them), and the PID of the agent that wrote it.
 *
 * One small JSON file, `<stateDir>/bridges.json`, written atomically (write a temporary file, fsync,
 * rename over the old one, fsync the directory), so a crash leaves either the old or the new
 * version. A file that cannot be parsed is a named error (StateError, ERR_VXMESH_STATE);
 * it is never silently replaced, since it is the only record of which bridges are ours. The file
 * handling itself is src/state/atomic.ts, shared with the other state files.
 *
 * `new StateStore(null)` keeps the state in memory only (tests, embedders that pass no stateDir).
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { StateError } from '../errors';
import { readJsonState, writeJsonAtomic } from '../state/atomic';

export const DEFAULT_STATE_DIR = '/var/lib/vxmesh';
export const STATE_FILE = 'bridges.json';

/** A bridge vxmesh created, and the network it was created for. */
export interface OwnedBridge {
  name: string;
  network: string;
  vni: number;
}

export interface AgentState {
  version: 1;
  /** PID of the agent that last wrote the file (0 after `vxmesh cleanup`). */
  pid: number;
  bridges: OwnedBridge[];
}

const empty = (): AgentState => ({ version: 1, pid: 0, bridges: [] });

/** Checks a parsed state file: the state, or what is wrong with it. */
export function checkState(v: unknown): AgentState | string {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not a JSON object';
  const o = v as Record<string, unknown>;
  if (o.version !== 1) return `unknown version ${JSON.stringify(o.version)}`;
  if (!Array.isArray(o.bridges)) return '"bridges" is not a list';
  const bridges: OwnedBridge[] = [];
  for (const [i, b] of (o.bridges as unknown[]).entries()) {
    const x = b as Record<string, unknown> | null;
    if (!x || typeof x.name !== 'string' || !/^[^\s/]{1,15}$/.test(x.name) || typeof x.network !== 'string' || !Number.isInteger(x.vni)) {
      return `bridges[${i}] is not {name, network, vni}`;
    }
    bridges.push({ name: x.name, network: x.network, vni: x.vni as number });
  }
  const pid = Number.isInteger(o.pid) ? (o.pid as number) : 0;
  return { version: 1, pid, bridges };
}

export class StateStore {
  /** The file, or null when kept in memory. */
  readonly file: string | null;
  private mem: AgentState = empty();

  constructor(readonly dir: string | null) {
    this.file = dir === null ? null : path.join(dir, STATE_FILE);
  }

  /** The stored state; a missing file (or directory) is an empty state. Throws StateError. */
  load(): AgentState {
    if (this.file === null) return structuredClone(this.mem);
    return readJsonState(this.file, checkState) ?? empty();
  }

  /** Writes `s` atomically (src/state/atomic.ts). Throws StateError. */
  save(s: AgentState): void {
    if (this.file === null) {
      this.mem = structuredClone(s);
      return;
    }
    try {
      writeJsonAtomic(this.file, s, 0o644);
    } catch (e) {
      throw new StateError(this.file, `cannot write: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }

  /** Removes the file (after `vxmesh cleanup`). */
  remove(): void {
    if (this.file === null) {
      this.mem = empty();
      return;
    }
    try {
      fs.unlinkSync(this.file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new StateError(this.file, `cannot remove: ${(e as NodeJS.ErrnoException).code}`);
    }
  }
}
