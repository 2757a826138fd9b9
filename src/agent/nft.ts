/**
 * Runs `nft` (nftables), the one way the agent changes the host's packet filter: the anti-spoofing
 * table (endpoints/antispoof.ts), same-host policy ports (policy/local-ports.ts) and the handshake
 * flood guard (crypto/flood-guard.ts). Never rejects: the exit code and output are returned for the
 * caller to judge. `input` is the script given on stdin (`nft -f -`).
 */
import { execFile } from 'node:child_process';

export interface NftResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runNft(args: string[], input?: string): Promise<NftResult> {
  return new Promise((resolve) => {
    const c = execFile('nft', args, { timeout: 15_000, maxBuffer: 8 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr || (err ? err.message : '')) });
    });
    if (input !== undefined) c.stdin?.end(input);
  });
}
