#!/bin/bash
# Build the tiny bootable test guest used by the libvirt end-to-end tests.
#
#   tools/build_guest.sh OUTDIR
#
# OUTDIR receives vmlinuz (the Debian cloud kernel), initrd.gz (static busybox and an
# /init) and cmdline. The guest prints "GUEST-BOOTED" and then, every second, a line
#   tick N uptime=SECONDS mem=KIB cpus=N
# on its first serial port, so a test can read vCPUs, memory and continuity (a live
# migration keeps N growing; a reboot starts again at 1) from the console log.
# Boots under TCG in ~4 s; needs >= 128 MiB of guest RAM. Only apt (no internet
# beyond the Debian mirror) is needed. Does nothing when OUTDIR already holds a guest.
set -euo pipefail
OUT=${1:?usage: build_guest.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if [ -s "$OUT/vmlinuz" ] && [ -s "$OUT/initrd.gz" ] && [ -s "$OUT/cmdline" ]; then
  exit 0
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
KPKG=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null \
       | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
if [ -z "$KPKG" ]; then
  echo "build_guest.sh: no linux-image-cloud-amd64 in the apt index (run apt-get update)" >&2
  exit 1
fi
apt-get download -q "$KPKG" busybox-static >/dev/null
mkdir unpacked
for deb in ./*.deb; do dpkg-deb -x "$deb" unpacked; done
mkdir -p root/bin root/dev root/proc root/sys
cp unpacked/bin/busybox root/bin/busybox
cat > root/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
echo "GUEST-BOOTED uptime=$(cut -d' ' -f1 /proc/uptime)" > /dev/ttyS0
n=0
while true; do
  n=$((n + 1))
  mem=$(awk '/^MemTotal/{print $2}' /proc/meminfo)
  cpus=$(grep -c ^processor /proc/cpuinfo)
  echo "tick $n uptime=$(cut -d' ' -f1 /proc/uptime) mem=$mem cpus=$cpus" > /dev/ttyS0
  sleep 1
done
INIT
chmod 755 root/init
(cd root && find . | ./bin/busybox cpio -o -H newc 2>/dev/null | gzip -9 > "$WORK/initrd.gz")
cp unpacked/boot/vmlinuz-* "$WORK/vmlinuz"
echo "console=ttyS0 panic=-1 quiet" > "$WORK/cmdline"
mv "$WORK/vmlinuz" "$WORK/initrd.gz" "$WORK/cmdline" "$OUT/"
echo "guest in $OUT: $(du -sh "$OUT" | cut -f1)"
