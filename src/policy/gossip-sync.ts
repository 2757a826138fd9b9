/**
 * Policies between hosts: each host publishes its whole store (versioned entries, store.ts) in its
 * gossip record and merges every other live member's copy; the newest version of each policy wins
 * on every host, so all converge on the same set.
 *
 * Encoding (a record section holds at most 64 KiB, a record at most 16 sections):
 *   - a store whose JSON fits in `SECTION_BYTES` is section `policies` = the JSON itself (what every
 *     earlier agent wrote and reads);
 *   - a larger one is deflated (raw deflate) and base64-encoded, cut into at most `MAX_CHUNKS`
 *     pieces of `SECTION_BYTES`: section `policies` = `z1 <pieces> <sha256 of the base64, 16 hex>\n`
 *     + piece 0, sections `policies-1` … = the others. The receiver reads all pieces from the same
 *     member's record, checks the digest (a record caught between two updates is skipped until the
 *     next one) and inflates with a bound (`MAX_INFLATED`).
 *  So 1,000 rules (80–170 KB of JSON) travel as 4–15 KB of base64; the limit is 240 KB of it.
 * A store too large even so is not published (`publish` returns false; the host keeps it, status
 * says `spreadByGossip: false`).
 */
import { createHash } from 'node:crypto';
import * as zlib from 'node:zlib';
import type { PolicySyncChannel } from './extension';

export const POLICY_SECTION = 'policies';
/** Bytes of one section's data (the codec's limit is 64 KiB; room for the header). */
export const SECTION_BYTES = 60 * 1024;
/** Most sections one store takes (`policies`, `policies-1` … `policies-3`). */
export const MAX_CHUNKS = 4;
/** Largest store accepted from a peer once inflated (a decompression bomb stops here). */
export const MAX_INFLATED = 16 << 20;

const chunkName = (i: number): string => (i === 0 ? POLICY_SECTION : `${POLICY_SECTION}-${i}`);
const digest = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 16);

/** What the gossip extension offers (record sections and member changes). */
export interface GossipSectionsApi {
  setSection(name: string, data: string | null): void;
  sections(name: string): { node: string; state: string; self: boolean; data: string }[];
  onMembersChange(cb: () => void): () => void;
}

/** The section contents for a store's JSON (index i → section `chunkName(i)`), or null: too large. */
export function encodeSections(json: string): string[] | null {
  if (Buffer.byteLength(json) <= SECTION_BYTES) return [json];
  const b64 = zlib.deflateRawSync(json, { level: 9 }).toString('base64');
  const n = Math.ceil(b64.length / SECTION_BYTES);
  if (n > MAX_CHUNKS) return null;
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(b64.slice(i * SECTION_BYTES, (i + 1) * SECTION_BYTES));
  out[0] = `z1 ${n} ${digest(b64)}\n${out[0]}`;
  return out;
}

/**
 * The store JSON from a member's sections (`get(i)`: the data of section `chunkName(i)` in the same
 * record, or undefined), or null when they do not make one (missing piece, digest, bad deflate).
 */
export function decodeSections(get: (i: number) => string | undefined): string | null {
  const head = get(0);
  if (head === undefined) return null;
  if (!head.startsWith('z1 ')) return head;
  const nl = head.indexOf('\n');
  const m = /^z1 ([1-9]\d*) ([0-9a-f]{16})$/.exec(head.slice(0, nl < 0 ? head.length : nl));
  if (!m || nl < 0) return null;
  const n = Number(m[1]);
  if (n > MAX_CHUNKS) return null;
  const parts = [head.slice(nl + 1)];
  for (let i = 1; i < n; i++) {
    const p = get(i);
    if (p === undefined) return null;
    parts.push(p);
  }
  const b64 = parts.join('');
  if (digest(b64) !== m[2]) return null;
  try {
    return zlib.inflateRawSync(Buffer.from(b64, 'base64'), { maxOutputLength: MAX_INFLATED }).toString('utf8');
  } catch {
    return null;
  }
}

export function gossipPolicySync(g: GossipSectionsApi): PolicySyncChannel {
  let published = 0; // sections we hold now
  const withdraw = (from: number): void => {
    for (let i = from - 1; i >= 0; i--) g.setSection(chunkName(i), null);
    published = 0;
  };
  return {
    publish: (data) => {
      const secs = data === null ? [] : encodeSections(data);
      // Too large: our copy is withdrawn (the others keep what they merged; this host keeps its own).
      if (secs === null) {
        withdraw(published);
        return false;
      }
      // Pieces first, the head (with the digest) last, stale pieces after: a record caught between
      // two of these updates fails the digest and is read again at the next one.
      try {
        for (let i = secs.length - 1; i >= 1; i--) g.setSection(chunkName(i), secs[i]);
        g.setSection(POLICY_SECTION, secs.length ? secs[0] : null);
      } catch (e) {
        if (!(e instanceof RangeError)) throw e;
        // The record cannot take it (other sections, endpoints): withdraw ours, say it did not spread.
        withdraw(Math.max(published, secs.length));
        return false;
      }
      for (let i = secs.length; i < published; i++) g.setSection(chunkName(i), null);
      published = secs.length;
      return true;
    },
    received: () => {
      const byNode = new Map<string, Map<number, string>>();
      for (let i = 0; i < MAX_CHUNKS; i++) {
        for (const s of g.sections(chunkName(i))) {
          if (s.self || !(s.state === 'alive' || s.state === 'suspect')) continue;
          let m = byNode.get(s.node);
          if (!m) byNode.set(s.node, (m = new Map()));
          m.set(i, s.data);
        }
      }
      const out: { node: string; data: string }[] = [];
      for (const [node, m] of byNode) {
        const data = decodeSections((i) => m.get(i));
        if (data !== null) out.push({ node, data });
      }
      return out;
    },
    onChange: (cb) => g.onMembersChange(cb),
  };
}
