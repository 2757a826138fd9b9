#!/usr/bin/env python3
"""Userspace netem for the chaos lab (the lab's kernels may lack sch_netem): a TUN device through
which the switch namespace routes every underlay packet. Each packet is dropped with probability
LOSS%, else written back after DELAY ms +- uniform JITTER ms (so packets can reorder, as with
netem's jitter). The queue is bounded (QUEUE packets; beyond it, dropped and counted).
Prints 'ready' once the device exists; on SIGTERM/SIGINT prints one JSON line of counters, exits.
Usage: impair.py DEV LOSS_PCT DELAY_MS JITTER_MS SEED [QUEUE]
"""
import fcntl, heapq, json, os, random, select, signal, struct, sys, time

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000

dev, loss, delay, jitter, seed = sys.argv[1], float(sys.argv[2]) / 100, float(sys.argv[3]) / 1000, float(sys.argv[4]) / 1000, int(sys.argv[5])
limit = int(sys.argv[6]) if len(sys.argv) > 6 else 100000
fd = os.open('/dev/net/tun', os.O_RDWR)
fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', dev.encode(), IFF_TUN | IFF_NO_PI))
os.set_blocking(fd, False)
rng = random.Random(seed)
heap, seq = [], 0
stats = {'received': 0, 'dropped': 0, 'overflow': 0, 'sent': 0, 'maxQueue': 0}
running = True


def stop(*_):
    global running
    running = False


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
print('ready', flush=True)
while running:
    timeout = max(0.0, heap[0][0] - time.monotonic()) if heap else 0.5
    try:
        r, _, _ = select.select([fd], [], [], timeout)
    except InterruptedError:
        continue
    now = time.monotonic()
    if r:
        for _ in range(256):
            try:
                pkt = os.read(fd, 65536)
            except (BlockingIOError, InterruptedError):
                break
            stats['received'] += 1
            if rng.random() < loss:
                stats['dropped'] += 1
                continue
            if len(heap) >= limit:
                stats['overflow'] += 1
                continue
            heapq.heappush(heap, (now + max(0.0, delay + rng.uniform(-jitter, jitter)), seq, pkt))
            seq += 1
        stats['maxQueue'] = max(stats['maxQueue'], len(heap))
    now = time.monotonic()
    while heap and heap[0][0] <= now:
        try:
            os.write(fd, heapq.heappop(heap)[2])
            stats['sent'] += 1
        except OSError:
            stats['overflow'] += 1
print(json.dumps(stats), flush=True)
