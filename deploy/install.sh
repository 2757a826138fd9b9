#!/bin/sh
# Installs vxmesh as a systemd service from a built source tree (after `npm install`):
#   - the program under $PREFIX (default /opt/vxmesh), `vxmesh` linked into /usr/local/bin;
#   - the system user and group `vxmesh` (no login, no home);
#   - /etc/vxmesh (root:vxmesh 0750) with an example vxmesh.yaml if none exists (never overwritten);
#   - /etc/systemd/system/vxmesh.service, /etc/modules-load.d/vxmesh.conf (tun, bridge).
# It does not enable or start the service unless --enable is given.
#
# Usage: deploy/install.sh [--prefix DIR] [--node PATH] [--enable] [--check]
# --check only runs the checks (built tree, node, paths the service user must reach) and exits.
# --node PATH: the node (>= 20) the unit runs, written into it as an absolute path (default: the
#   `node` in PATH, resolved). Only production dependencies are copied (npm prune --omit=dev in a
#   staging copy). --enable refuses to start the service while /etc/vxmesh/vxmesh.yaml is still the
#   example (installed as a template): edit it first.
# DESTDIR=/some/root installs into a staging root instead of / (the user is then added to
# DESTDIR/etc/passwd with useradd --prefix; systemctl is not called).
set -eu

PREFIX=/opt/vxmesh
NODE_ARG=
ENABLE=0
CHECK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX="$2"; shift 2 ;;
    --node) NODE_ARG="$2"; shift 2 ;;
    --enable) ENABLE=1; shift ;;
    --check) CHECK=1; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done

SRC=$(cd "$(dirname "$0")/.." && pwd)
D=${DESTDIR:-}
die() { echo "install.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
for f in package.json bin/vxmesh dist/src/cli/main.js build/Release/vxmesh.node node_modules deploy/vxmesh.service; do
  [ -e "$SRC/$f" ] || die "missing $SRC/$f: run 'npm install' in $SRC first"
done
# Node >= 20. Debian 12 (bookworm) ships nodejs 18: take Debian 13 (trixie)'s nodejs package, or
# the upstream tarball from https://nodejs.org/dist/ unpacked under /usr/local (README, Quick start).
NODE_HELP="Debian 12 ships Node 18: install Node >= 20 from Debian 13's nodejs package or the upstream tarball (https://nodejs.org/dist/latest-v20.x/, e.g. tar -xJf node-v20.*-linux-x64.tar.xz -C /usr/local --strip-components=1), then run install.sh again (or pass --node PATH)"
if [ -n "$NODE_ARG" ]; then
  [ -x "$NODE_ARG" ] || die "--node $NODE_ARG is not an executable"
  NODE_BIN=$NODE_ARG
else
  NODE_BIN=$(command -v node) || die "node not found in PATH. $NODE_HELP"
fi
NODE_BIN=$(readlink -f "$NODE_BIN")
NODE_MAJOR=$("$NODE_BIN" -p 'process.versions.node.split(".")[0]' 2>/dev/null) || die "$NODE_BIN does not run. $NODE_HELP"
[ "$NODE_MAJOR" -ge 20 ] || die "node >= 20 required, $NODE_BIN is $("$NODE_BIN" --version). $NODE_HELP"

# The service runs as the unprivileged user vxmesh: every directory on the way to the program, and
# to the node it runs with, must be searchable by that user (o+x; the user has no other groups), or
# the agent fails at start with "Cannot find module" / "Permission denied". Refuse such an install.
searchable() { # DIR: others may search it
  m=$(stat -L -c '%A' "$1" 2>/dev/null) || return 1
  [ "$(printf %s "$m" | cut -c10)" = x ] || [ "$(printf %s "$m" | cut -c10)" = t ]
}
check_path() { # WHAT PATH (absolute; each existing component checked)
  case "$2" in
    /home/*|/root/*|/run/user/*) die "$1 $2 is under /home, /root or /run/user, which the unit hides from the agent (ProtectHome=yes); install it elsewhere (default --prefix /opt/vxmesh; node system-wide)" ;;
  esac
  p=""
  searchable / || die "$1: / is not searchable by other users; the vxmesh user could not reach $2"
  for c in $(printf %s "$2" | tr '/' ' '); do
    p="$p/$c"
    [ -e "$p" ] || break
    if [ -d "$p" ] && ! searchable "$p"; then
      die "$1 $2 is not reachable by the service user vxmesh: $p is mode $(stat -L -c '%a' "$p") (others cannot enter it); choose a --prefix outside it (default /opt/vxmesh) or make $p searchable (chmod o+x)"
    fi
  done
}
case "$PREFIX" in /*) ;; *) die "--prefix must be an absolute path (got $PREFIX)" ;; esac
if [ -n "$D" ]; then
  # Staging root: the program's path below DESTDIR (the staging root itself is not on the target).
  p="$D"
  for c in $(printf %s "$PREFIX" | tr '/' ' '); do
    p="$p/$c"
    [ -e "$p" ] || break
    [ -d "$p" ] && ! searchable "$p" && die "program directory $D$PREFIX is not reachable by the service user vxmesh: $p is mode $(stat -L -c '%a' "$p") (others cannot enter it)"
  done
else
  check_path "program directory" "$PREFIX"
  # systemd starts ExecStart with its default PATH; /usr/local/bin/vxmesh runs `env node`.
  UNIT_NODE=$(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin command -v node) ||
    die "node is not in systemd's default PATH (/usr/local/bin, /usr/bin, /bin; found only $(command -v node)): install Node.js >= 20 system-wide, or link it into /usr/local/bin"
  UNIT_NODE=$(readlink -f "$UNIT_NODE")
  check_path "node" "$UNIT_NODE"
  [ "$(stat -L -c '%A' "$UNIT_NODE" | cut -c10)" = x ] || die "node $UNIT_NODE is not executable by other users (the service user vxmesh)"
fi
if [ "$CHECK" = 1 ]; then
  echo "install.sh: checks passed (tree built, node >= 20, $D$PREFIX reachable by the service user)"
  exit 0
fi

# Program files.
install -d -m 0755 "$D$PREFIX" "$D$PREFIX/build/Release" "$D/usr/local/bin"
rm -rf "$D$PREFIX/dist" "$D$PREFIX/bin" "$D$PREFIX/node_modules"
cp -R "$SRC/dist" "$SRC/bin" "$D$PREFIX/"
# Production dependencies only: prune a staging copy (offline; the source tree keeps its dev tools).
command -v npm >/dev/null || die "npm not found: it selects the production dependencies (npm prune --omit=dev)"
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
cp -R "$SRC/node_modules" "$SRC/package.json" "$STAGE/"
[ -f "$SRC/package-lock.json" ] && cp "$SRC/package-lock.json" "$STAGE/"
(cd "$STAGE" && npm prune --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null) ||
  die "npm prune --omit=dev failed in the staging copy $STAGE"
cp -R "$STAGE/node_modules" "$D$PREFIX/"
install -m 0644 "$SRC/package.json" "$D$PREFIX/package.json"
[ -f "$SRC/README.md" ] && install -m 0644 "$SRC/README.md" "$D$PREFIX/README.md"
install -m 0755 "$SRC/build/Release/vxmesh.node" "$D$PREFIX/build/Release/vxmesh.node"
chmod -R u=rwX,go=rX "$D$PREFIX"
chown -R root:root "$D$PREFIX"
ln -sfn "$PREFIX/bin/vxmesh" "$D/usr/local/bin/vxmesh"

# User and group.
if [ -n "$D" ]; then
  install -d "$D/etc"
  for f in passwd group shadow gshadow; do [ -e "$D/etc/$f" ] || : > "$D/etc/$f"; done
  USERADD_ROOT="--prefix $D"
  lookup() { grep -q "^$2:" "$D/etc/$1"; }
else
  USERADD_ROOT=""
  lookup() { getent "$1" "$2" >/dev/null; }
fi
NOLOGIN=/usr/sbin/nologin
[ -x "$NOLOGIN" ] || NOLOGIN=/bin/false
if ! lookup group vxmesh; then
  # shellcheck disable=SC2086
  groupadd $USERADD_ROOT --system vxmesh
fi
if ! lookup passwd vxmesh; then
  # shellcheck disable=SC2086
  useradd $USERADD_ROOT --system --gid vxmesh --no-create-home --home-dir /var/lib/vxmesh \
    --shell "$NOLOGIN" --comment "vxmesh agent" vxmesh
fi

# Configuration (never overwritten) and directories.
install -d -m 0750 "$D/etc/vxmesh"
if [ ! -e "$D/etc/vxmesh/vxmesh.yaml" ]; then
  install -m 0640 "$SRC/deploy/vxmesh.example.yaml" "$D/etc/vxmesh/vxmesh.yaml"
  CONFIG_NEW=1
else
  CONFIG_NEW=0
fi
if [ -n "$D" ]; then
  GID=$(awk -F: '$1 == "vxmesh" { print $3 }' "$D/etc/group")
  chown "0:$GID" "$D/etc/vxmesh" "$D/etc/vxmesh/vxmesh.yaml"
else
  chown root:vxmesh "$D/etc/vxmesh" "$D/etc/vxmesh/vxmesh.yaml"
fi

# systemd unit and kernel modules.
install -d -m 0755 "$D/etc/systemd/system" "$D/etc/modules-load.d"
sed -e "s#file:///opt/vxmesh/#file://$PREFIX/#" -e "s#/usr/bin/node /opt/vxmesh/#$NODE_BIN $PREFIX/#" \
  "$SRC/deploy/vxmesh.service" > "$D/etc/systemd/system/vxmesh.service"
chmod 0644 "$D/etc/systemd/system/vxmesh.service"
printf 'tun\nbridge\n' > "$D/etc/modules-load.d/vxmesh.conf"
chmod 0644 "$D/etc/modules-load.d/vxmesh.conf"

# The example is a template, not a config for this host: never start the service with it.
EXAMPLE_CONFIG=0
cmp -s "$SRC/deploy/vxmesh.example.yaml" "$D/etc/vxmesh/vxmesh.yaml" && EXAMPLE_CONFIG=1
TODO="edit $D/etc/vxmesh/vxmesh.yaml (the example, installed as a template): set node (this host's name), underlay.address (this host's address on the underlay), networks (name, vni, bridge) and peers (the other hosts' addresses, or a gossip section); check it with 'vxmesh check-config $D/etc/vxmesh/vxmesh.yaml'; then: systemctl enable --now vxmesh"

if [ -z "$D" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  if [ "$ENABLE" = 1 ] && [ "$EXAMPLE_CONFIG" = 0 ]; then systemctl enable --now vxmesh.service; fi
fi

echo "vxmesh installed in $D$PREFIX (unit runs $NODE_BIN)"
if [ "$ENABLE" = 1 ] && [ "$EXAMPLE_CONFIG" = 1 ]; then
  echo "install.sh: not enabling vxmesh: $D/etc/vxmesh/vxmesh.yaml is still the example config." >&2
  echo "install.sh: $TODO" >&2
  exit 1
fi
[ "$CONFIG_NEW" = 1 ] || [ "$EXAMPLE_CONFIG" = 1 ] && echo "$TODO"
exit 0
