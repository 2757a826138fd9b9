/**
 * `vxmesh capture`: dropped frames, or what the agent forwards, as pcapng (Wireshark, tshark),
 * over the agent's root-only control socket (`api.socket`; src/capture/extension.ts):
 *
 *   vxmesh capture --drops [--network N] [--count K] -w FILE   the last dropped frames, each with
 *                                                              its reason and peer as the comment
 *   vxmesh capture --network N [--count K] -w FILE             live, both directions, until ^C or K
 *
 * The file only ever holds whole pcapng blocks (the stream is cut at block boundaries), so it is
 * valid however the capture ends. `-w -` writes to stdout (e.g. `| tshark -r -`).
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { Command } from '../command';
import { err, parseCommandArgs } from '../command';
import { UsageError, VxmeshError } from '../../errors';
import { AgentDownError, DEFAULT_SOCKET } from '../../endpoints/client';
import { BT_EPB, BT_SHB, BlockSplitter, blockType, epbDropCount } from '../../capture/pcapng';
import { socketOf } from './attach';

const USAGE = `Usage: vxmesh capture --drops [--network N] [--count K] -w FILE [--socket PATH]
       vxmesh capture --network N [--count K] [--snap BYTES] [--queue FRAMES] -w FILE [--socket PATH]

  --drops            the last frames the agent dropped (per network, at most 256 each; without
                     --network also the datagrams dropped before their network was known), each
                     with its drop reason, direction, network and peer as the packet comment
                     (tshark -r FILE -T fields -e frame.comment)
  (without --drops)  what the agent forwards on network N, live, both directions (inner Ethernet
                     frames), until interrupted (^C) or --count frames; frames the capture could
                     not keep up with are counted as missed (epb_dropcount), never slowed down

Options:
  -n, --network N    network name or VNI (required for a live capture)
  -c, --count K      drops: the newest K frames per network; live: stop after K frames
  -w, --write FILE   the pcapng file to write (mode 0600; - = stdout)
      --snap BYTES   live: bytes kept per frame (default 2048, 64..65535)
      --queue FRAMES live: frames queued in the agent for this capture (default 4096)
  -s, --socket PATH  the agent's api.socket (default $VXMESH_SOCKET or ${DEFAULT_SOCKET}); needs root

Exit codes: 0 written, 1 agent unreachable or runtime failure, 2 bad arguments.`;

const OPTIONS = {
  drops: { type: 'boolean' },
  network: { type: 'string', short: 'n' },
  count: { type: 'string', short: 'c' },
  write: { type: 'string', short: 'w' },
  snap: { type: 'string' },
  queue: { type: 'string' },
  socket: { type: 'string', short: 's' },
  help: { type: 'boolean', short: 'h' },
} as const;

function positive(name: string, v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`--${name}: expected a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

export const capture: Command = {
  name: 'capture',
  summary: 'Dropped or forwarded frames as pcapng (Wireshark), with drop reasons',
  usage: USAGE,
  async run(args) {
    const { values } = parseCommandArgs(args, OPTIONS);
    const file = values.write;
    if (!file) throw new UsageError('-w FILE is required (- for stdout)');
    const count = positive('count', values.count);
    const snap = positive('snap', values.snap);
    const queue = positive('queue', values.queue);
    const q = new URLSearchParams();
    if (values.network) q.set('network', values.network);
    if (count) q.set('count', count);
    let path: string;
    if (values.drops) {
      if (snap || queue) throw new UsageError('--snap and --queue are for live captures (without --drops)');
      path = `/v1/capture/drops${q.size ? `?${q}` : ''}`;
    } else {
      if (!values.network) throw new UsageError('a live capture needs --network N (or use --drops)');
      if (snap) q.set('snap', snap);
      if (queue) q.set('queue', queue);
      path = `/v1/capture/live?${q}`;
    }
    const r = await stream(socketOf(values.socket), path, file, !values.drops);
    const where = file === '-' ? 'stdout' : file;
    err(`${r.frames} frame${r.frames === 1 ? '' : 's'} written to ${where}${values.drops ? '' : `; ${r.missed} missed (the capture could not keep up)`}${r.interrupted ? ' (interrupted)' : ''}`);
    return 0;
  },
};

interface StreamResult {
  frames: number;
  missed: number;
  interrupted: boolean;
}

/** GETs `path` on the control socket and writes the pcapng answer to `file`, whole blocks only. */
function stream(socket: string, path: string, file: string, live: boolean): Promise<StreamResult> {
  return new Promise((resolve, reject) => {
    let fd = -1;
    let frames = 0;
    let missed = 0;
    let interrupted = false;
    let done = false;
    const split = new BlockSplitter();
    const finish = (e: Error | null) => {
      if (done) return;
      done = true;
      process.removeListener('SIGINT', onSig);
      process.removeListener('SIGTERM', onSig);
      if (fd > 2) fs.closeSync(fd);
      if (e) reject(e);
      else resolve({ frames, missed, interrupted });
    };
    const onSig = () => {
      interrupted = true;
      req.destroy();
      finish(null);
    };
    const req = http.request({ socketPath: socket, method: 'GET', path }, (res) => {
      if ((res.statusCode ?? 500) >= 400) {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let msg = `HTTP ${res.statusCode}`;
          try {
            msg = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error?: string }).error ?? msg;
          } catch { /* not JSON */ }
          finish(res.statusCode === 400 ? new UsageError(msg) : new VxmeshError('ERR_VXMESH_API', res.statusCode === 404 && /no such endpoint/.test(msg) ? `${msg}: the agent does not serve capture (an older version)` : msg));
        });
        return;
      }
      try {
        fd = file === '-' ? 1 : fs.openSync(file, 'w', 0o600);
      } catch (e) {
        req.destroy();
        finish(new UsageError(`cannot write ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`));
        return;
      }
      let first = true;
      res.on('data', (c: Buffer) => {
        if (done) return;
        let blocks: Buffer[];
        try {
          blocks = split.push(c);
        } catch (e) {
          req.destroy();
          finish(new VxmeshError('ERR_VXMESH_API', `the agent's answer is not pcapng: ${(e as Error).message}`));
          return;
        }
        for (const b of blocks) {
          if (first && blockType(b) !== BT_SHB) {
            req.destroy();
            finish(new VxmeshError('ERR_VXMESH_API', "the agent's answer is not pcapng (no section header)"));
            return;
          }
          first = false;
          if (blockType(b) === BT_EPB) {
            frames++;
            missed += epbDropCount(b);
          }
          fs.writeSync(fd, b);
        }
      });
      res.on('end', () => finish(null));
      res.on('error', (e) => finish(interrupted ? null : e));
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (done) return;
      finish(new AgentDownError(socket, e.code ?? e.message));
    });
    if (live) {
      process.on('SIGINT', onSig);
      process.on('SIGTERM', onSig);
    }
    req.end();
  });
}
