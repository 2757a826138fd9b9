/** Entry of bin/vxmesh-cni: reads stdin, runs the plugin, writes the result, exits with its code. */
import { runCni } from './plugin';

export async function main(): Promise<number> {
  const chunks: Buffer[] = [];
  if (process.env.CNI_COMMAND !== 'VERSION') {
    for await (const c of process.stdin) {
      chunks.push(c as Buffer);
      if (chunks.reduce((n, x) => n + x.length, 0) > 1 << 20) break;
    }
  }
  const r = await runCni(process.env, Buffer.concat(chunks).toString('utf8'));
  if (r.stdout) process.stdout.write(r.stdout + '\n');
  return r.code;
}
