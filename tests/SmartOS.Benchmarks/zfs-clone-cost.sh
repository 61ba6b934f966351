#!/bin/sh
# What a clone costs in real ZFS (zfs-fuse, pool version 23, ashift 9), the floor the `clones`
# benchmark compares itself with. Run as root: ./zfs-clone-cost.sh [CLONES] [IMAGE_MIB] [ASHIFT]
# The daemon runs in a private mount namespace (as the storage tests' ZfsFuse fixture does), so the
# machine's /run, /etc/zfs and any zfs-fuse already running are untouched; it is stopped by its pid.
set -eu
clones=${1:-200}
mib=${2:-4}
ashift=${3:-9}
dir=$(mktemp -d /tmp/zfs-clone-cost.XXXXXX)
mkdir -p "$dir/etc" "$dir/lib" "$dir/mnt"
truncate -s 1G "$dir/vdev0"
unshare --mount --propagation private sh -c "mount -t tmpfs none /run && mkdir -p /run/zfs /run/lock && mount --bind '$dir/etc' /etc/zfs && mount --bind '$dir/lib' /var/lib/zfs && exec zfs-fuse --no-daemon --no-kstat-mount" &
daemon=$!
i=0
while [ ! -S /proc/$daemon/root/run/zfs/zfs_socket ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
z() { nsenter -t $daemon -m -- "$@"; }
used() { z zfs get -Hp -o value used zc; }
cleanup() { z zpool destroy -f zc >/dev/null 2>&1 || true; kill $daemon 2>/dev/null || true; wait $daemon 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
z zpool create -o ashift=$ashift -m "$dir/mnt/zc" zc "$dir/vdev0"
z zfs create -o mountpoint="$dir/mnt/img" zc/img
n=0
while [ $n -lt $((mib * 4)) ]; do
  head -c 262144 /dev/urandom > "/proc/$daemon/root$dir/mnt/img/f$n"   # incompressible, as a real image's files mostly are
  n=$((n + 1))
done
z zfs snapshot zc/img@final
z zfs create -o mountpoint=none zc/zones
sync; sleep 6
image=$(z zfs get -Hp -o value referenced zc/img@final)
before=$(used)
n=1
while [ $n -le "$clones" ]; do z zfs clone zc/img@final "zc/zones/c$n"; n=$((n + 1)); done
sleep 6
after=$(used)
echo "zfs-fuse (pool v23): image $image bytes; $clones clones took $((after - before)) bytes of pool space: $(( (after - before) / clones )) bytes per clone"
z zpool list -H zc
echo "clone's own used: $(z zfs get -Hp -o value used zc/zones/c1)"
