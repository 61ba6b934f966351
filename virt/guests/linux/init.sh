#!/bin/sh
# /init of the Linux guest's initramfs (build.sh): mounts proc, sys and dev, loads the virtio
# modules in /lib/modules/order, says so on the console, gives eth0 the address of the kernel
# command line's smartos.ip=ADDR/PREFIX (and smartos.gw=ADDR, if any), then runs a shell on the
# console. The markers are what the tests and `vmadm console` readers wait for.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
for m in $(cat /lib/modules/order); do
  insmod "/lib/modules/$m" || echo "init: insmod $m failed"
done
echo "SMARTOS-LINUX-UP $(uname -r)"
ip=; gw=
for arg in $(cat /proc/cmdline); do
  case $arg in
    smartos.ip=*) ip=${arg#smartos.ip=} ;;
    smartos.gw=*) gw=${arg#smartos.gw=} ;;
  esac
done
ip link set lo up
if [ -n "$ip" ]; then
  n=0
  while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
  ip link set eth0 up && ip addr add "$ip" dev eth0 && echo "SMARTOS-NET-UP eth0 $ip"
  [ -n "$gw" ] && ip route add default via "$gw"
fi
exec /bin/sh
