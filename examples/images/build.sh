#!/usr/bin/env bash
# Builds the two example images of this directory, deterministically (the same bytes every run):
#   base-1.0.0            a joyent base (zone-dataset): root/ with /etc (passwd, group, hosts, motd,
#                         resolv.conf) and /var/www/index.html
#   bhyve-pattern-1.0.0   a zvol for bhyve: a sparse 4 MiB volume holding a 1 KiB text pattern at
#                         0, 64 KiB and 2 MiB (zeros elsewhere), for a guest to read and checksum
# build.scn makes each as a dataset zones/UUID@final with zfs and the file commands and sends it with
# zfs send; this script compresses the streams (gzip -n: no name, no time stamp) and writes each
# manifest with the file's size and sha1. The directory is then an image source as imgadm reads one:
#   imgadm sources -a examples/images && imgadm import 8a1f4d2e-3b5c-4e6f-9a7b-0c1d2e3f4a5b
#
# Run it from the repository root after a build:  examples/images/build.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
smartos() { dotnet "$repo/tools/bin/Debug/net10.0/smartos.dll" "$@"; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
smartos run --outdir "$work" "$here/build.scn" > "$work/transcript"

# manifest NAME UUID TYPE OS EXTRA: writes NAME.imgmanifest for NAME.zfs.gz.
manifest() {
    local name=$1 uuid=$2 type=$3 os=$4 extra=$5
    gzip -n -9 -c "$work/$name.zfs" > "$here/$name.zfs.gz"
    local size sha1
    size=$(stat -c %s "$here/$name.zfs.gz")
    sha1=$(sha1sum "$here/$name.zfs.gz" | cut -d' ' -f1)
    cat > "$here/$name.imgmanifest" <<JSON
{
  "v": 2,
  "uuid": "$uuid",
  "owner": "00000000-0000-0000-0000-000000000000",
  "name": "${name%-*}",
  "version": "${name##*-}",
  "state": "active",
  "disabled": false,
  "public": true,
  "published_at": "2026-12-01T00:00:00Z",
  "type": "$type",
  "os": "$os",
$extra  "files": [
    {
      "sha1": "$sha1",
      "size": $size,
      "compression": "gzip"
    }
  ]
}
JSON
}

manifest base-1.0.0 8a1f4d2e-3b5c-4e6f-9a7b-0c1d2e3f4a5b zone-dataset smartos \
'  "description": "A small joyent base: /etc and a web root with an index page.",
'
manifest bhyve-pattern-1.0.0 4c2b1a0f-9e8d-4c7b-a6f5-e4d3c2b1a098 zvol other \
'  "description": "A 4 MiB bhyve disk holding a known 1 KiB pattern at 0, 64 KiB and 2 MiB.",
  "image_size": 4,
  "nic_driver": "virtio",
  "disk_driver": "virtio",
  "cpu_type": "host",
  "requirements": {
    "brand": "bhyve"
  },
'
ls -l "$here"/*.imgmanifest "$here"/*.zfs.gz
