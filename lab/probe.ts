/**
 * Reachability probes for the policy truth-table test (run inside a container namespace):
 *   node dist/lab/probe.js serve PORT...          TCP and UDP servers on each port (TCP: writes
 *                                                 "ok" and closes; UDP: echoes); prints "ready"
 *   node dist/lab/probe.js probe MS TARGET...     TARGET = ip:port/tcp|udp; probes all at once and
 *                                                 prints a JSON object target → true/false
 *   node dist/lab/probe.js hold IP PORT MS        a TCP connection that sends a byte every 100 ms
 *                                                 and expects it echoed; prints one line per second
 *                                                 ("up N" / "down") for MS milliseconds
 * Bounded: every probe has a timeout, the hold loop stops by itself.
 */
import * as dgram from 'node:dgram';
import * as net from 'node:net';

function serve(ports: number[]): void {
  let pending = ports.length * 2;
  const ready = () => {
    if (--pending === 0) process.stdout.write('ready\n');
  };
  for (const port of ports) {
    const t = net.createServer((c) => {
      c.on('error', () => {});
      c.on('data', (d) => c.write(d)); // hold mode: echo
      c.write('ok');
    });
    t.listen(port, '0.0.0.0', ready);
    const u = dgram.createSocket('udp4');
    u.on('message', (m, r) => u.send(m, r.port, r.address));
    u.bind(port, '0.0.0.0', ready);
  }
}

function probeOne(target: string, ms: number): Promise<boolean> {
  const m = /^([\d.]+):(\d+)\/(tcp|udp)$/.exec(target);
  if (!m) return Promise.resolve(false);
  const [, ip, p, proto] = m;
  const port = Number(p);
  return new Promise((resolve) => {
    let done = false;
    const finish = (v: boolean, cleanup: () => void) => {
      if (done) return;
      done = true;
      cleanup();
      resolve(v);
    };
    if (proto === 'tcp') {
      const s = net.connect({ host: ip, port });
      const timer = setTimeout(() => finish(false, () => s.destroy()), ms);
      s.on('data', () => finish(true, () => { clearTimeout(timer); s.destroy(); }));
      s.on('error', () => finish(false, () => clearTimeout(timer)));
    } else {
      const s = dgram.createSocket('udp4');
      const timer = setTimeout(() => finish(false, () => s.close()), ms);
      s.on('message', () => finish(true, () => { clearTimeout(timer); s.close(); }));
      s.on('error', () => finish(false, () => { clearTimeout(timer); s.close(); }));
      // Three tries inside the window (UDP has no retransmission of its own).
      const send = () => { if (!done) s.send('probe', port, ip); };
      send();
      setTimeout(send, ms / 3);
      setTimeout(send, (2 * ms) / 3);
    }
  });
}

async function probe(ms: number, targets: string[]): Promise<void> {
  const res = await Promise.all(targets.map((t) => probeOne(t, ms)));
  const out: Record<string, boolean> = {};
  targets.forEach((t, i) => (out[t] = res[i]));
  process.stdout.write(JSON.stringify(out) + '\n');
}

function hold(ip: string, port: number, ms: number): void {
  const s = net.connect({ host: ip, port });
  let echoed = 0;
  let sent = 0;
  s.on('data', (d) => (echoed += d.length));
  s.on('error', () => {});
  const tick = setInterval(() => { if (s.writable) { s.write('x'); sent++; } }, 100);
  let last = 0;
  const report = setInterval(() => {
    process.stdout.write(echoed > last ? `up ${echoed}\n` : 'down\n');
    last = echoed;
  }, 1000);
  setTimeout(() => {
    clearInterval(tick);
    clearInterval(report);
    s.destroy();
    process.stdout.write(`end sent=${sent} echoed=${echoed}\n`);
  }, ms);
}

const [cmd, ...rest] = process.argv.slice(2);
if (cmd === 'serve') serve(rest.map(Number));
else if (cmd === 'probe') void probe(Number(rest[0]), rest.slice(1));
else if (cmd === 'hold') hold(rest[0], Number(rest[1]), Number(rest[2]));
else {
  process.stderr.write('usage: probe.js serve PORT... | probe MS TARGET... | hold IP PORT MS\n');
  process.exit(2);
}
