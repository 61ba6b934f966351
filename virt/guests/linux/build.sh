#!/usr/bin/env bash
# Builds the Linux guest of a bhyve zone (issue 18): Debian's cloud kernel and an initramfs of
# busybox-static, into OUTDIR:
#   OUTDIR/vmlinuz      the bzImage of linux-image-cloud-amd64 (the installed /boot/vmlinuz-*-cloud-amd64
#                       if there is one, else the package fetched with apt-get download)
#   OUTDIR/initrd.img   a gzip'd cpio (newc) archive: busybox, the virtio modules the kernel has as
#                       modules (from its /boot/config-*: virtio_pci, virtio_net, virtio_blk and what
#                       they depend on, dependencies first), and /init (init.sh beside this script)
#   OUTDIR/config       the kernel's config, OUTDIR/version its release
# Usage: build.sh OUTDIR
# It needs apt-get (Debian), dpkg-deb, cpio and gzip; xz if the kernel's modules are .ko.xz. Run it
# by hand or from .ci/run, never at the project's run time; the kernel is not committed (licence and
# size). The same inputs give the same initrd.img bytes (sorted names, mtime 0, gzip -n).
set -euo pipefail
out=${1:?usage: build.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The kernel: installed, or the package linux-image-cloud-amd64 depends on, unpacked here.
kroot=/
vmlinuz=$(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$vmlinuz" ]; then
  pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }')
  [ -n "$pkg" ] || { echo "build.sh: apt knows no linux-image-cloud-amd64 (run apt-get update)" >&2; exit 1; }
  (cd "$work" && apt-get download -qq -o APT::Sandbox::User=root "$pkg") >/dev/null
  dpkg-deb -x "$work"/"$pkg"_*.deb "$work/kernel"
  kroot=$work/kernel
  vmlinuz=$(ls "$kroot"/boot/vmlinuz-* | head -n 1)
fi
release=${vmlinuz##*/vmlinuz-}
config=$kroot/boot/config-$release
moddir=$kroot/lib/modules/$release
[ -f "$config" ] || { echo "build.sh: no config-$release beside the kernel" >&2; exit 1; }

# busybox: the installed static one, or busybox-static's.
busybox=
for b in /bin/busybox /usr/bin/busybox; do
  if [ -x "$b" ] && ! ldd "$b" >/dev/null 2>&1; then busybox=$b; break; fi
done
if [ -z "$busybox" ]; then
  (cd "$work" && apt-get download -qq -o APT::Sandbox::User=root busybox-static) >/dev/null
  dpkg-deb -x "$work"/busybox-static_*.deb "$work/bb"
  for b in "$work"/bb/bin/busybox "$work"/bb/usr/bin/busybox; do
    if [ -x "$b" ]; then busybox=$b; break; fi
  done
fi

# The tree of the initramfs.
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,etc,lib/modules,tmp,root}
cp "$busybox" "$root/bin/busybox"
cp "$here/init.sh" "$root/init"
chmod 755 "$root/init" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"

# Modules: each wanted driver that is =m, with its dependencies first, once each. A package's
# modules come without modules.dep (depmod makes it at install), so the dependencies are read from
# each module's own .modinfo ("depends=a,b").
: > "$root/lib/modules/order"
declare -A done_mod=()
module_file() {   # $1: module name -> its file under $moddir (names may use - or _)
  find "$moddir/kernel" \( -name "$1.ko" -o -name "$1.ko.xz" -o -name "$1.ko.zst" \
    -o -name "${1//_/-}.ko" -o -name "${1//_/-}.ko.xz" -o -name "${1//_/-}.ko.zst" \) | LC_ALL=C sort | head -n 1
}
add_module() {   # $1: module name
  local name=$1 file plain dep
  [ -n "${done_mod[$name]:-}" ] && return
  done_mod[$name]=1
  file=$(module_file "$name")
  [ -n "$file" ] || { echo "build.sh: no module $name under $moddir" >&2; exit 1; }
  plain=$root/lib/modules/$name.ko
  case $file in
    *.ko.xz) xz -dc "$file" > "$plain" ;;
    *.ko.zst) zstd -qdc "$file" > "$plain" ;;
    *) cp "$file" "$plain" ;;
  esac
  for dep in $(tr '\0' '\n' < "$plain" | sed -n 's/^depends=//p' | tr ',' ' '); do
    add_module "$dep"
  done
  echo "$name.ko" >> "$root/lib/modules/order"
}
for opt in VIRTIO_PCI VIRTIO_NET VIRTIO_BLK; do
  case $(grep "^CONFIG_$opt=" "$config" || true) in
    *=y) ;;
    *=m) add_module "$(echo "$opt" | tr 'A-Z' 'a-z')" ;;
    *) echo "build.sh: the kernel has no CONFIG_$opt" >&2; exit 1 ;;
  esac
done

# The archive: sorted, owned by root, mtime 0, so the same inputs give the same bytes.
find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -9 -n > "$out/initrd.img"
cp "$vmlinuz" "$out/vmlinuz"
cp "$config" "$out/config"
echo "$release" > "$out/version"
echo "built $out/vmlinuz ($release) and $out/initrd.img ($(wc -l < "$root/lib/modules/order") modules)"
