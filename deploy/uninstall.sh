#!/bin/sh
# Removes what deploy/install.sh installed: stops and disables the service, removes the unit,
# the modules-load file, /usr/local/bin/vxmesh and $PREFIX. Configuration (/etc/vxmesh), state
# (/var/lib/vxmesh) and the `vxmesh` user are kept unless --purge is given.
#
# Usage: deploy/uninstall.sh [--prefix DIR] [--purge]
# DESTDIR=/some/root works as for install.sh.
set -eu

PREFIX=/opt/vxmesh
PURGE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX="$2"; shift 2 ;;
    --purge) PURGE=1; shift ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "uninstall.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done
D=${DESTDIR:-}
[ "$(id -u)" = 0 ] || { echo "uninstall.sh: must run as root" >&2; exit 1; }

if [ -z "$D" ] && [ -d /run/systemd/system ]; then
  systemctl disable --now vxmesh.service 2>/dev/null || true
fi
rm -f "$D/etc/systemd/system/vxmesh.service" "$D/etc/modules-load.d/vxmesh.conf"
if [ -L "$D/usr/local/bin/vxmesh" ]; then rm -f "$D/usr/local/bin/vxmesh"; fi
case "$PREFIX" in
  /|/usr|/usr/local|/opt|/etc|/var|"") echo "uninstall.sh: refusing to remove prefix '$PREFIX'" >&2; exit 2 ;;
esac
rm -rf "$D$PREFIX"
if [ -z "$D" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

if [ "$PURGE" = 1 ]; then
  rm -rf "$D/etc/vxmesh" "$D/var/lib/vxmesh"
  if [ -n "$D" ]; then P="--prefix $D"; has() { grep -q "^$2:" "$D/etc/$1"; }
  else P=""; has() { getent "$1" "$2" >/dev/null; }; fi
  # shellcheck disable=SC2086
  if has passwd vxmesh; then userdel $P vxmesh; fi
  # shellcheck disable=SC2086
  if has group vxmesh; then groupdel $P vxmesh; fi
fi
if [ "$PURGE" = 1 ]; then echo "vxmesh uninstalled and purged"; else echo "vxmesh uninstalled (kept /etc/vxmesh, /var/lib/vxmesh and the vxmesh user)"; fi
exit 0
