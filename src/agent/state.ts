/**
 * What the agent remembers between runs: which bridges vxmesh created (so a restart — clean or
 * after a crash — reuses them with their container ports, and only `vxmesh cleanup` or removing a
 * network from the config deletes them), and the PID of the agent that wrote it.
 *
 * One small JSON file, `<stateDir>/state.json`, written atomically (write a temporary file, fsync,
 * rename over the old one, fsync the directory), so a crash leaves either the old or the new
 * version. A file that cannot be parsed is a named error (ERR_VXMESH_STATE) that says what to do;
 * it is never silently replaced, since it is the only record of which bridges are ours.
 *
 * `new StateStore(null)` keeps the state in memory only (tests, embedders that pass no stateDir).
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { VxmeshError } from '../errors';

export const DEFAULT_STATE_DIR = '/var/lib/vxmesh';
export const STATE_FILE = 'state.json';
export const ERR_STATE = 'ERR_VXMESH_STATE';

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

function corrupt(file: string, why: string): VxmeshError {
  return new VxmeshError(ERR_STATE,
    `state file ${file} is corrupt (${why}); it records which bridges vxmesh created: fix it, or remove it ` +
    '(vxmesh then treats every existing bridge as not its own and never deletes it)', { file });
}

/** Parses and checks a state file's text; throws ERR_VXMESH_STATE naming `file`. */
export function parseState(text: string, file: string): AgentState {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw corrupt(file, `not JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw corrupt(file, 'not a JSON object');
  const o = v as Record<string, unknown>;
  if (o.version !== 1) throw corrupt(file, `unknown version ${JSON.stringify(o.version)}`);
  if (!Array.isArray(o.bridges)) throw corrupt(file, '"bridges" is not a list');
  const bridges: OwnedBridge[] = [];
  for (const [i, b] of (o.bridges as unknown[]).entries()) {
    const x = b as Record<string, unknown> | null;
    if (!x || typeof x.name !== 'string' || !/^[^\s/]{1,15}$/.test(x.name) || typeof x.network !== 'string' || !Number.isInteger(x.vni)) {
      throw corrupt(file, `bridges[${i}] is not {name, network, vni}`);
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

  /** The stored state; a missing file (or directory) is an empty state. */
  load(): AgentState {
    if (this.file === null) return structuredClone(this.mem);
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return empty();
      throw new VxmeshError(ERR_STATE, `cannot read state file ${this.file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: this.file });
    }
    return parseState(text, this.file);
  }

  /** Writes `s` atomically (temporary file, fsync, rename, fsync of the directory). */
  save(s: AgentState): void {
    if (this.file === null || this.dir === null) {
      this.mem = structuredClone(s);
      return;
    }
    const tmp = `${this.file}.tmp-${process.pid}`;
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o755 });
      const fd = fs.openSync(tmp, 'w', 0o644);
      try {
        fs.writeSync(fd, JSON.stringify(s, null, 2) + '\n');
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, this.file);
      const dfd = fs.openSync(this.dir, 'r');
      try {
        fs.fsyncSync(dfd);
      } finally {
        fs.closeSync(dfd);
      }
    } catch (e) {
      try { fs.unlinkSync(tmp); } catch { /* not created */ }
      throw new VxmeshError(ERR_STATE, `cannot write state file ${this.file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: this.file });
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
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new VxmeshError(ERR_STATE, `cannot remove ${this.file}: ${(e as NodeJS.ErrnoException).code}`, { file: this.file });
    }
  }
}
