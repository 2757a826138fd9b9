// Test helper: a real unix datagram socket (what systemd listens on as NOTIFY_SOCKET), served by
// a tiny python3 process (Node's dgram has no AF_UNIX) that prints each datagram as one JSON line.
import { spawn, type ChildProcess } from 'node:child_process';
import * as readline from 'node:readline';

const SCRIPT = `
import json, os, socket, sys
p = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(p)
print("bound", flush=True)
while True:
    d = s.recv(65536)
    print(json.dumps(d.decode("utf-8", "replace")), flush=True)
`;

export class NotifyReceiver {
  readonly messages: string[] = [];
  private waiters: (() => void)[] = [];

  private constructor(private readonly child: ChildProcess) {}

  /** Binds `socketPath` and resolves once it is listening (bounded: 10 s). */
  static start(socketPath: string): Promise<NotifyReceiver> {
    const child = spawn('python3', ['-c', SCRIPT, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    const rx = new NotifyReceiver(child);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { rx.close(); reject(new Error('notify receiver did not bind within 10 s')); }, 10_000);
      child.once('error', (e) => { clearTimeout(timer); reject(e); });
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`notify receiver exited (${code})`)); });
      const lines = readline.createInterface({ input: child.stdout! });
      lines.on('line', (line) => {
        if (line === 'bound') { clearTimeout(timer); resolve(rx); return; }
        rx.messages.push(JSON.parse(line));
        for (const w of rx.waiters.splice(0)) w();
      });
    });
  }

  /** Resolves with the messages once at least `n` have arrived; rejects after `timeoutMs`. */
  async waitFor(n: number, timeoutMs: number): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${n} notify messages, got ${this.messages.length}: ${JSON.stringify(this.messages)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return this.messages.slice();
  }

  close(): void {
    if (this.child.exitCode === null && this.child.pid) {
      this.child.removeAllListeners('exit');
      try { process.kill(this.child.pid, 'SIGTERM'); } catch { /* already gone */ }
    }
  }
}
