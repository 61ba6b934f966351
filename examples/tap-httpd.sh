#!/usr/bin/env bash
# A Linux network namespace browses a zone's httpd through a TAP NIC.
#
# Real time, real Linux: `smartos boot` runs a host whose e1000g0 is a TAP device; the TAP's Linux
# end is moved into a namespace of this script's own (198.18.0.1/24), a joyent zone on a VNIC over
# e1000g0 serves HTTP at 198.18.0.2, and Linux's curl fetches the page. Needs root and
# /dev/net/tun; configures nothing in the root namespace and removes what it made on exit.
#
# Run it:  sudo examples/tap-httpd.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "tap-httpd: needs root (TAP devices and network namespaces)" >&2; exit 1; }
[[ -c /dev/net/tun ]] || { echo "tap-httpd: /dev/net/tun is missing" >&2; exit 1; }

ns=smartos-demo-$$
tap=smtdemo$$
root=$(mktemp -d)
pid=
hpid=
cleanup() {
  [[ -n $hpid ]] && kill "$hpid" 2>/dev/null || true
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$root"
}
trap cleanup EXIT

dotnet build tools -nologo -v q >/dev/null
smartos() { dotnet tools/bin/Debug/net10.0/smartos.dll "$@"; }

ip netns add "$ns"
ip -n "$ns" link set lo up
# Started directly (not through the function) so that $! is the host's own process.
dotnet tools/bin/Debug/net10.0/smartos.dll boot --root "$root" --nics 1 --nic "e1000g0=tap:$tap" &
pid=$!
for _ in $(seq 100); do [[ -S $root/smartos.sock ]] && break; sleep 0.1; done
[[ -S $root/smartos.sock ]] || { echo "tap-httpd: the host did not start" >&2; exit 1; }

# The TAP's Linux end goes into the namespace at once; the host keeps its descriptor.
ip link set "$tap" netns "$ns"
ip -n "$ns" addr add 198.18.0.1/24 dev "$tap"
ip -n "$ns" link set "$tap" up

set -x
smartos --root "$root" dladm create-vnic -t -l e1000g0 web0
smartos --root "$root" zonecfg -z web "create; set zonepath=/zones/web; add net; set physical=web0; set allowed-address=198.18.0.2/24; end"
smartos --root "$root" zoneadm -z web install
smartos --root "$root" zoneadm -z web boot
dotnet tools/bin/Debug/net10.0/smartos.dll --root "$root" zlogin web httpd >"$root/httpd.log" 2>&1 &
hpid=$!
sleep 2
ip netns exec "$ns" curl -sS --max-time 10 http://198.18.0.2/
ip netns exec "$ns" ping -c 2 -W 2 198.18.0.2
smartos --root "$root" dladm show-link -s
