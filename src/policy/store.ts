/**
 * The policies this host knows, versioned so that every host converges on the same set: each
 * entry carries (counter, time, node); the greater version wins everywhere (counter first, then
 * time, then node name, so a tie is broken the same way on every host). Applying or deleting
 * locally stamps counter = the highest counter seen + 1. A deletion is a tombstone, kept so that an
 * older copy arriving later cannot resurrect the policy.
 *
 * Persisted in `<stateDir>/policies.json` (atomic write; a corrupt file is a StateError), spread by
 * gossip as a record section (extension.ts) — or, without gossip, applied on each host.
 */
import * as path from 'node:path';
import { Problems } from '../config/check';
import { readJsonState, writeJsonAtomic } from '../state/atomic';
import { type Policy, validatePolicy } from './document';

export interface PolicyVersion {
  readonly counter: number;
  readonly time: number;
  readonly node: string;
}

export interface PolicyEntry {
  readonly name: string;
  readonly version: PolicyVersion;
  /** The document as applied (JSON-able, re-validated on load); null = deleted. */
  readonly doc: unknown | null;
  /** The validated policy; null for a tombstone. */
  readonly policy: Policy | null;
}

/** Most policies a store holds (tombstones included): bounds memory and gossip records. */
export const MAX_POLICIES = 4096;

export function compareVersions(a: PolicyVersion, b: PolicyVersion): number {
  if (a.counter !== b.counter) return a.counter - b.counter;
  if (a.time !== b.time) return a.time - b.time;
  return a.node < b.node ? -1 : a.node > b.node ? 1 : 0;
}

/** The wire/state form of an entry. */
export interface PolicyEntryJson {
  name: string;
  version: PolicyVersion;
  doc: unknown | null;
}

export class PolicyStore {
  private readonly entries = new Map<string, PolicyEntry>();
  private maxCounter = 0;
  /** Bumped on every change (the compiled tables' version is derived from it). */
  generation = 0;

  constructor(private readonly node: string, private readonly file: string | null) {}

  static fileIn(stateDir: string): string {
    return path.join(stateDir, 'policies.json');
  }

  /** Loads the state file (none: empty). Throws StateError for a corrupt file. */
  load(): void {
    if (!this.file) return;
    const list = readJsonState(this.file, (v) => {
      if (typeof v !== 'object' || v === null || !Array.isArray((v as { policies?: unknown }).policies)) return 'expected {"policies": [...]}';
      const out: PolicyEntry[] = [];
      for (const e of (v as { policies: unknown[] }).policies) {
        const entry = entryFromJson(e);
        if (typeof entry === 'string') return entry;
        out.push(entry);
      }
      return out;
    });
    for (const e of list ?? []) this.put(e);
    this.generation++;
  }

  private save(): void {
    if (this.file) writeJsonAtomic(this.file, { policies: this.toJson() });
  }

  private put(e: PolicyEntry): void {
    this.entries.set(e.name, e);
    if (e.version.counter > this.maxCounter) this.maxCounter = e.version.counter;
  }

  /** Applies a validated policy here (a new version). Returns its entry. */
  apply(policy: Policy, doc: unknown, now: number): PolicyEntry {
    if (!this.entries.has(policy.name) && this.entries.size >= MAX_POLICIES) throw new RangeError(`at most ${MAX_POLICIES} policies`);
    const e: PolicyEntry = { name: policy.name, version: { counter: this.maxCounter + 1, time: now, node: this.node }, doc, policy };
    this.put(e);
    this.generation++;
    this.save();
    return e;
  }

  /** Deletes a policy (tombstone). Returns false when it is not known. */
  delete(name: string, now: number): boolean {
    const cur = this.entries.get(name);
    if (!cur || cur.policy === null) return false;
    this.put({ name, version: { counter: this.maxCounter + 1, time: now, node: this.node }, doc: null, policy: null });
    this.generation++;
    this.save();
    return true;
  }

  /** Merges entries from another host; the newer version of each name wins. Returns how many changed. */
  merge(list: readonly PolicyEntryJson[]): number {
    let changed = 0;
    for (const raw of list) {
      // Not newer than ours: skipped before the (costly) validation of its document.
      const r = raw as { name?: unknown; version?: Partial<PolicyVersion> } | null;
      const known = r && typeof r.name === 'string' ? this.entries.get(r.name) : undefined;
      const v = r?.version;
      if (known && v && typeof v.counter === 'number' && typeof v.time === 'number' && typeof v.node === 'string'
        && compareVersions(known.version, v as PolicyVersion) >= 0) continue;
      const e = entryFromJson(raw);
      if (typeof e === 'string') continue; // a bad remote entry never replaces a good one
      const cur = this.entries.get(e.name);
      if (cur && compareVersions(cur.version, e.version) >= 0) continue;
      if (!cur && this.entries.size >= MAX_POLICIES) continue;
      this.put(e);
      changed++;
    }
    if (changed) {
      this.generation++;
      this.save();
    }
    return changed;
  }

  get(name: string): PolicyEntry | undefined {
    const e = this.entries.get(name);
    return e && e.policy ? e : undefined;
  }

  /** Live policies (no tombstones), by name. */
  list(): PolicyEntry[] {
    return [...this.entries.values()].filter((e) => e.policy !== null).sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /** Live policies of a network, in name order. */
  forNetwork(network: string): Policy[] {
    return this.list().filter((e) => e.policy!.network === network).map((e) => e.policy!);
  }

  toJson(): PolicyEntryJson[] {
    return [...this.entries.values()].sort((a, b) => (a.name < b.name ? -1 : 1)).map((e) => ({ name: e.name, version: e.version, doc: e.doc }));
  }
}

function entryFromJson(v: unknown): PolicyEntry | string {
  if (typeof v !== 'object' || v === null) return 'policy entry: expected an object';
  const o = v as Record<string, unknown>;
  const ver = o.version as Record<string, unknown> | undefined;
  if (typeof o.name !== 'string' || !ver || typeof ver.counter !== 'number' || typeof ver.time !== 'number' || typeof ver.node !== 'string') {
    return 'policy entry: expected {name, version: {counter, time, node}, doc}';
  }
  const version = { counter: ver.counter, time: ver.time, node: ver.node };
  if (o.doc === null || o.doc === undefined) return { name: o.name, version, doc: null, policy: null };
  const p = new Problems();
  const policy = validatePolicy(p, o.doc);
  if (!policy) return `policy ${o.name}: ${p.list.map((x) => x.message).join('; ')}`;
  if (policy.name !== o.name) return `policy entry ${o.name}: document names ${policy.name}`;
  return { name: o.name, version, doc: o.doc, policy };
}
