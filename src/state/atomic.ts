/**
 * State that must survive a restart (policies, IPAM leases, endpoints, bridge ownership): written
 * atomically — write a temporary file beside the target, fsync it, rename it over the target,
 * fsync the directory — so a crash leaves either the old or the new file, never half of one. A file
 * that exists but cannot be read or parsed is a `StateError` naming it, never a silent reset.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StateError } from '../errors';

/** Writes `text` to `file` atomically (mode `mode`, default 0600); creates the directory (0700). */
export function writeFileAtomic(file: string, text: string | Uint8Array, mode = 0o600): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now().toString(36)}.tmp`);
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, mode);
  try {
    fs.fchmodSync(fd, mode);
    fs.writeSync(fd, typeof text === 'string' ? Buffer.from(text) : text);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  const dfd = fs.openSync(dir, fs.constants.O_RDONLY);
  try {
    fs.fsyncSync(dfd);
  } finally {
    fs.closeSync(dfd);
  }
}

/** Writes `value` as JSON atomically. */
export function writeJsonAtomic(file: string, value: unknown, mode = 0o600): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n', mode);
}

/**
 * Reads a JSON state file: `null` when it does not exist; otherwise `check(parsed)` (which throws
 * or returns a message for a value of the wrong shape). Unreadable, unparsable or wrongly shaped
 * files throw StateError naming the file.
 */
export function readJsonState<T>(file: string, check: (v: unknown) => T | string): T | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new StateError(file, `cannot read: ${(e as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new StateError(file, `not valid JSON (${(e as Error).message})`);
  }
  let r: T | string;
  try {
    r = check(v);
  } catch (e) {
    throw new StateError(file, (e as Error).message);
  }
  if (typeof r === 'string') throw new StateError(file, r);
  return r;
}
