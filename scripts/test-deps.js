'use strict';
// The ONE list of Debian packages the build and the test suites need, and why. Used by
// scripts/test-setup.js (run by `npm test` before any test starts; .ci/run only calls `npm install`
// and `npm test`). `cmds` are what the tests run; a package counts as present when dpkg says it is
// installed or, off Debian, when every one of its commands is on PATH.
//
// `for` says which runs need it: `build` (node-gyp builds the addon), `test` (npm test). Other runs
// (e.g. sanitizer or fuzzing scripts) may add their own group names and call
// `node scripts/test-setup.js --for <group>`.
const PACKAGES = [
  { pkg: 'build-essential', cmds: ['make', 'g++'], for: ['build', 'test'], why: 'node-gyp builds the native addon (native/)' },
  { pkg: 'python3', cmds: ['python3'], for: ['build', 'test'], why: 'node-gyp; the sd_notify receiver of the systemd tests' },
  { pkg: 'iproute2', cmds: ['ip', 'ss', 'bridge', 'tc'], for: ['test'], why: 'netns testbeds (ip netns, veth, bridges, TAPs; tc netem for the chaos test)' },
  { pkg: 'util-linux', cmds: ['setpriv', 'mount', 'nsenter', 'unshare'], for: ['test'], why: 'the agent as an unprivileged user (setpriv); nsenter for the podman endpoint test; unshare for dockerd in a private mount namespace' },
  { pkg: 'procps', cmds: ['sysctl'], for: ['test'], why: 'sysctl inside test namespaces' },
  { pkg: 'iputils-ping', cmds: ['ping'], for: ['test'], why: 'reachability checks between lab containers' },
  { pkg: 'iperf3', cmds: ['iperf3'], for: ['test'], why: 'lab TCP throughput measurements' },
  { pkg: 'tcpdump', cmds: ['tcpdump'], for: ['test'], why: 'underlay captures (nothing in clear, VXLAN on the wire)' },
  { pkg: 'tshark', cmds: ['tshark'], for: ['test'], why: 'interop tests decode captured VXLAN' },
  { pkg: 'ethtool', cmds: ['ethtool'], for: ['test'], why: 'the lab turns veth offloads off on the underlay' },
  { pkg: 'systemd', cmds: ['systemd-analyze'], for: ['test'], why: 'systemd-analyze verify/security of deploy/vxmesh.service' },
  { pkg: 'prometheus', cmds: ['prometheus', 'promtool'], for: ['test'], why: 'promtool check rules/metrics; a real Prometheus scraping an agent' },
  { pkg: 'strace', cmds: ['strace'], for: ['test'], why: 'the syscalls an agent makes under load (ops netns test)' },
  { pkg: 'clang', cmds: ['clang'], for: ['test', 'asan', 'fuzz'], why: 'libFuzzer harnesses and sanitizer builds of the native parsers (native-fuzz test; npm run test:asan, fuzz)' },
  { pkg: 'libclang-rt-14-dev', cmds: [], for: ['test', 'asan', 'fuzz'], why: 'the libFuzzer and sanitizer runtimes clang links those harnesses with' },
  { pkg: 'nftables', cmds: ['nft'], for: ['test'], why: 'the endpoint guard test (nft rules next to the agent)' },
  { pkg: 'podman', cmds: ['podman'], for: ['test'], why: 'a real container runtime on lab hosts (endpoints-podman test)' },
  { pkg: 'runc', cmds: ['runc'], for: ['test'], why: "podman's OCI runtime (endpoints-podman test)" },
  { pkg: 'conmon', cmds: ['conmon'], for: ['test'], why: "podman's container monitor (endpoints-podman test)" },
  { pkg: 'containernetworking-plugins', cmds: [], for: ['test'], why: "the CNI plugins of podman's cni network backend (endpoints-podman test)" },
  { pkg: 'busybox-static', cmds: ['busybox'], for: ['test'], why: 'the root filesystem of the podman and docker test containers (no registry)' },
  { pkg: 'docker.io', cmds: ['dockerd', 'docker', 'containerd'], for: ['test'], why: 'the real dockerd on lab hosts driving the vxmesh Docker network + IPAM plugin (docker-driver netns test)' },
  { pkg: 'passwd', cmds: ['useradd', 'groupadd'], for: ['test'], why: 'deploy/install.sh adds the service user (install tests, the unprivileged agent runs installed)' },
];

module.exports = { PACKAGES };
