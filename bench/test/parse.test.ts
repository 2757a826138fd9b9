/**
 * Unit tests of the benchmark's pure parts: tool-output parsers, /proc parsers, statistics,
 * goal verdicts and report rendering. Run: `npx tsc -p . && node --test dist/bench/test/`.
 */

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { parseIperfTcp, parseIperfUdp, parsePidStat, parsePing, parseProcStat, parseSockperf, percentile, serverBusy } from '../lib/measure';
import { allGoals, goals, markdown, median, parseUnderlays, ReportMeta, RoundSample, summarize, svgChart } from '../lib/report';

// Trimmed from a real `iperf3 -c … -t 3 -J` (3.12) run.
const TCP_JSON = JSON.stringify({
  intervals: [
    { sum: { start: 0, end: 1.000606, seconds: 1.0006, bytes: 1593311232, bits_per_second: 12738770914.7216 } },
    { sum: { start: 1.000606, end: 2.00007, seconds: 0.9995, bytes: 1115422720, bits_per_second: 8928167477.13697 } },
  ],
  end: {
    sum_sent: { seconds: 3.00131, bytes: 3766484992, bits_per_second: 10039576030.47, retransmits: 9874, sender: true },
    sum_received: { seconds: 3.004392, bytes: 3763732480, bits_per_second: 10021947815.06541, sender: true },
  },
});

// From a real `iperf3 -u -l 64 -b … -J` run (client side; loss reported back by the server).
const UDP_JSON = JSON.stringify({
  end: { sum: { start: 0, end: 3.010992, seconds: 3.010992, bytes: 14022080, bits_per_second: 37392001.4, jitter_ms: 1.509, lost_packets: 6702, packets: 219095, lost_percent: 3.0589, sender: true } },
});

// Real `sockperf ping-pong --full-rtt` tail (with its ANSI colour codes).
const SOCKPERF = `sockperf: [Valid Duration] RunTime=1.550 sec; SentMessages=55068; ReceivedMessages=55068
sockperf: \x1b[2;35m====> avg-rtt=28.123 (std-dev=26.638)\x1b[0m
sockperf: \x1b[2;35mTotal 55068 observations\x1b[0m; each percentile contains 550.68 observations
sockperf: ---> <MAX> observation = 3494.619
sockperf: ---> percentile 99.999 = 2992.210
sockperf: ---> percentile 99.990 = 1293.909
sockperf: ---> percentile 99.900 =  110.220
sockperf: ---> percentile 99.000 =   69.141
sockperf: ---> percentile 90.000 =   27.272
sockperf: ---> percentile 50.000 =   26.410
sockperf: ---> <MIN> observation =   14.287
`;

test('iperf3 TCP: receiver goodput, bytes, interval samples, retransmits', () => {
  const r = parseIperfTcp(TCP_JSON);
  assert.equal(r.bps, 10021947815.06541);
  assert.equal(r.bytes, 3763732480);
  assert.deepEqual(r.intervals, [12738770914.7216, 8928167477.13697]);
  assert.equal(r.retransmits, 9874);
});

test('iperf3: an error object or a missing summary is an error, never a zero', () => {
  assert.throws(() => parseIperfTcp(JSON.stringify({ error: 'unable to connect to server' })), /unable to connect/);
  assert.throws(() => parseIperfTcp(JSON.stringify({ end: {} })), /sum_received/);
  assert.throws(() => parseIperfUdp(JSON.stringify({ end: { sum: { bytes: 1 } } })), /packets/);
  assert.throws(() => parseIperfTcp('not json'));
});

test('iperf3: a server still busy with the previous test is recognised (retried, not an error)', () => {
  assert.equal(serverBusy(JSON.stringify({ start: {}, error: 'the server is busy running a test. try again later' })), true);
  assert.equal(serverBusy(UDP_JSON), false);
});

test('iperf3 UDP: received pps = (sent − lost) / seconds; loss in percent', () => {
  const r = parseIperfUdp(UDP_JSON);
  assert.equal(r.sent, 219095);
  assert.equal(r.lost, 6702);
  assert.ok(Math.abs(r.pps - (219095 - 6702) / 3.010992) < 1e-6);
  assert.ok(Math.abs(r.lossPct - (100 * 6702) / 219095) < 1e-9);
});

test('sockperf: p50/p99 round trips despite ANSI codes', () => {
  const r = parseSockperf(SOCKPERF);
  assert.equal(r.p50, 26.41);
  assert.equal(r.p99, 69.141);
  assert.equal(r.avg, 28.123);
  assert.equal(r.observations, 55068);
  assert.throws(() => parseSockperf('sockperf: ERROR: connection refused'), /percentile 50/);
});

test('ping fallback: per-reply times → percentiles in µs', () => {
  const lines = [0.05, 0.04, 0.06, 0.1, 0.045].map((t, i) => `64 bytes from 198.19.0.2: icmp_seq=${i + 1} ttl=64 time=${t} ms`).join('\n');
  const r = parsePing(lines);
  assert.equal(r.observations, 5);
  assert.equal(r.p50, 50);
  assert.equal(r.p99, 100);
  assert.throws(() => parsePing('5 packets transmitted, 0 received'), /no replies/);
});

test('percentile (nearest rank) and median', () => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(xs, 50), 50);
  assert.equal(percentile(xs, 99), 99);
  assert.equal(percentile([7], 99), 7);
  assert.ok(Number.isNaN(percentile([], 50)));
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([NaN, 5]), 5);
  assert.equal(median([]), null);
});

test('/proc parsers: system busy excludes idle+iowait; comm with spaces and parens', () => {
  const st = parseProcStat('cpu  100 5 50 1000 20 3 7 2 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n');
  assert.equal(st.total, 100 + 5 + 50 + 1000 + 20 + 3 + 7 + 2);
  assert.equal(st.busy, 100 + 5 + 50 + 3 + 7 + 2);
  const pid = '1234 (node (a) b) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 3 4 20 0 11 0 5 0 0';
  assert.equal(parsePidStat(pid), 325);
});

function sample(scenario: RoundSample['scenario'], round: number, gbps: number, pps: number, p50: number, cpuSec: number, rss?: number): RoundSample {
  const bytes = (gbps * 1e9 * 8) / 8;
  return {
    scenario,
    round,
    startedAt: '',
    tcp1: { bps: gbps * 1e9, bytes, seconds: 8, intervals: [], retransmits: 0, cpu: { wall: 8, systemSec: 16, pathSec: cpuSec, agentSec: rss ? cpuSec / 2 : null }, backgroundCpuPerSec: 0 },
    tcp4: { bps: gbps * 2e9, bytes: bytes * 2, seconds: 8, intervals: [], retransmits: 0 },
    udp: { sent: pps * 5, lost: 0, pps, lossPct: 0, seconds: 5, jitterMs: 0, offeredPps: pps, len: 64 },
    rtt: { tool: 'sockperf', p50, p99: p50 * 2, avg: p50, observations: 1000 },
    agentPeakRssBytes: rss ?? null,
    notes: [],
    errors: [],
  };
}

test('summaries are medians over rounds; goals compare against kernel VXLAN', () => {
  const k = summarize('kernel-vxlan', 'kernel VXLAN', [sample('kernel-vxlan', 1, 10, 100e3, 30, 1), sample('kernel-vxlan', 2, 12, 100e3, 32, 1.2), sample('kernel-vxlan', 3, 11, 100e3, 31, 1.1)], null);
  assert.equal(k.tcp1Gbps, 11);
  assert.equal(k.rttP50Us, 31);
  assert.equal(k.underlay, 'wire');
  const v = summarize('vxmesh', 'vxmesh', [sample('vxmesh', 1, 6, 100e3, 34, 2.2, 80 * 2 ** 20), sample('vxmesh', 2, 4, 90e3, 40, 4, 90 * 2 ** 20)], null);
  assert.equal(v.tcp1Gbps, 5);
  assert.equal(v.rssMB, 90);
  const g = goals(v, k);
  const byName = (s: string) => g.find((x) => x.goal.startsWith(s))!;
  assert.equal(byName('TCP 1 stream ≥ 0.70').pass, false); // wire-like: 5/11 < 0.7
  assert.equal(byName('UDP 64 B').pass, true); // no loss
  assert.equal(byName('RTT p50 ≤ 2.0').pass, true); // 37/31 ≤ 2
  assert.equal(byName('RTT p99 ≤ 3.0').pass, true);
  assert.equal(byName('CPU per GB').pass, false); // 3.1/1.1 > 2
  assert.equal(byName('agent peak RSS ≤ 100 MB').pass, true);
  const md = markdown(meta(), [k, v]);
  assert.match(md, /\| vxmesh \| 5\.00 \(0\.45×\)/);
  assert.match(md, /\| TCP 1 stream ≥ 0\.70 × kernel VXLAN \| 0\.45× \| \*\*no\*\* \|/);
  const svg = svgChart(meta(), [k, v]);
  assert.match(svg, /^<svg[^>]+xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.match(svg, /<\/svg>$/);
  assert.equal((svg.match(/<rect [^>]*><title>/g) ?? []).length, 12); // 6 metrics × 2 paths
});

test('--underlay: wire, offload, both; unknown names refused', () => {
  assert.deepEqual(parseUnderlays('both'), ['wire', 'offload']);
  assert.deepEqual(parseUnderlays('offload,wire'), ['wire', 'offload']);
  assert.deepEqual(parseUnderlays('offload'), ['offload']);
  assert.throws(() => parseUnderlays('nic'), /unknown underlay "nic"/);
  assert.throws(() => parseUnderlays(''), /expected/);
});

test('both underlays: one table each, ratios to the same underlay\'s kernel VXLAN, per-underlay goals', () => {
  const on = (u: 'wire' | 'offload', s: RoundSample): RoundSample => ({ ...s, underlay: u });
  const sums = [
    summarize('kernel-vxlan', 'kernel VXLAN', [on('wire', sample('kernel-vxlan', 1, 5, 60e3, 30, 1))], null, 'wire'),
    summarize('vxmesh', 'vxmesh plaintext', [on('wire', sample('vxmesh', 1, 4, 100e3, 50, 1.8, 70 * 2 ** 20))], null, 'wire'),
    summarize('tinc', 'tinc (switch)', [on('wire', sample('tinc', 1, 0.4, 30e3, 60, 20))], null, 'wire'),
    summarize('kernel-vxlan', 'kernel VXLAN', [on('offload', sample('kernel-vxlan', 1, 10, 60e3, 30, 1))], null, 'offload'),
    summarize('vxmesh', 'vxmesh plaintext', [on('offload', sample('vxmesh', 1, 4, 100e3, 70, 1.8, 70 * 2 ** 20))], null, 'offload'),
    summarize('tinc', 'tinc (switch)', [on('offload', sample('tinc', 1, 0.4, 30e3, 60, 20))], null, 'offload'),
  ];
  const md = markdown(meta(), sums);
  assert.match(md, /#### Wire-like underlay \(veth offloads off\)/);
  assert.match(md, /#### Offloading underlay/);
  const wire = md.slice(md.indexOf('#### Wire-like'), md.indexOf('#### Offloading'));
  const off = md.slice(md.indexOf('#### Offloading'));
  assert.match(wire, /\| vxmesh plaintext \| 4\.00 \(0\.80×\)/);
  assert.match(off, /\| vxmesh plaintext \| 4\.00 \(0\.40×\)/);
  assert.match(wire, /\| TCP 1 stream ≥ 0\.70 × kernel VXLAN \| 0\.80× \| yes \|/);
  assert.match(off, /\| TCP 1 stream ≥ 0\.50 × kernel VXLAN \| 0\.40× \| \*\*no\*\* \|/);
  const v = allGoals(sums);
  const rtt = (u: string) => v[u].vxmesh.find((g) => g.goal.startsWith('RTT p50 below'))!;
  assert.equal(rtt('wire').pass, true); // 50 < tinc's 60
  assert.equal(rtt('offload').pass, false); // 70 > 60
  assert.match(rtt('offload').goal, /tinc \(switch\)/);
  const svg = svgChart(meta(), sums);
  assert.equal((svg.match(/<rect [^>]*><title>/g) ?? []).length, 36); // 6 metrics × 3 paths × 2 underlays
  assert.match(svg, /offloading underlay/);
});

test('a path that could not run is n/a or failed with its reason, never a number', () => {
  const na = summarize('vxmesh-enc', 'vxmesh encrypted', [], 'not built');
  assert.equal(na.status, 'n/a');
  const failed = summarize('nebula', 'nebula', [{ scenario: 'nebula', round: 1, startedAt: '', notes: [], errors: [{ step: 'setup', message: 'boom' }] }], null);
  assert.equal(failed.status, 'failed');
  assert.equal(failed.reason, 'setup: boom');
  assert.equal(failed.tcp1Gbps, null);
  const md = markdown(meta(), [failed]);
  assert.match(md, /\| nebula \| failed: setup: boom \|/);
});

function meta(): ReportMeta {
  return { timestamp: 't', quick: false, rounds: 3, seconds: { tcp: 8, udp: 5, rtt: 4 }, udpOfferedPps: 100e3, machine: 'm', commit: 'c', backgroundBusyCpus: 0, cpus: 2 };
}
