#!/usr/bin/env bash
# guest/build-kernel.sh PKGROOT VMLINUX IRD - called by build.sh; prints the kernel release on stdout.
# From the extracted Debian kernel package in PKGROOT:
#  - VMLINUX: the uncompressed ELF kernel. QEMU's microvm boots it through its PVH note (a direct 32-bit entry),
#    which skips the bzImage's real-mode setup and its decompressor (slow under TCG).
#  - IRD/lib/modules/: the modules a virtio balloon needs. Debian builds them as modules (=m), not into the
#    kernel; the list is checked against the kernel's config so a future kernel with them built in still works.
set -euo pipefail
PKGROOT=$1 VMLINUX=$2 IRD=$3

vmlinuz=$(find "$PKGROOT/boot" -name 'vmlinuz-*')
config=$(find "$PKGROOT/boot" -name 'config-*')
if [ ! -f "$vmlinuz" ] || [ ! -f "$config" ]; then echo "build-kernel: no vmlinuz/config in $PKGROOT/boot" >&2; exit 1; fi
release=${vmlinuz##*/vmlinuz-}

# The bzImage carries the ELF as an xz stream (Debian's choice: CONFIG_KERNEL_XZ); find its magic and
# decompress only that stream (--single-stream ignores the bytes that follow it).
grep -q '^CONFIG_KERNEL_XZ=y' "$config" || { echo "build-kernel: kernel is not xz-compressed" >&2; exit 1; }
off=$(LC_ALL=C grep -m1 -obUaP '\xfd7zXZ\x00' "$vmlinuz" | cut -d: -f1 | head -1)
[ -n "$off" ] || { echo "build-kernel: no xz stream in $vmlinuz" >&2; exit 1; }
# (tail dies of SIGPIPE when xz stops reading: keep it out of the pipeline's status.)
xz -dc --single-stream < <(tail -c +$((off + 1)) "$vmlinuz") >"$VMLINUX"
# XEN_ELFNOTE_PHYS32_ENTRY (type 0x12) is the PVH entry point QEMU looks for.
readelf -n "$VMLINUX" | grep -Eq '^ +Xen +0x[0-9a-f]+\s+Unknown note type: \(0x00000012\)' \
  || { echo "build-kernel: $VMLINUX has no PVH note (Xen note 0x12)" >&2; exit 1; }

# Balloon modules, in dependency order (each one's modinfo "depends=" names only earlier ones), with the config
# symbol that builds each (virtio_ring.ko comes with CONFIG_VIRTIO; it has no symbol of its own).
mkdir -p "$IRD/lib/modules"
: >"$IRD/lib/modules/load-order"
for pair in virtio_ring:VIRTIO virtio:VIRTIO virtio_mmio:VIRTIO_MMIO virtio_balloon:VIRTIO_BALLOON; do
  m=${pair%%:*} sym=CONFIG_${pair#*:}
  case $(grep -E "^$sym=" "$config" | cut -d= -f2) in
    y) continue ;;                                   # built in: nothing to load
    m) ko="$PKGROOT/lib/modules/$release/kernel/drivers/virtio/$m.ko"
       [ -f "$ko" ] || { echo "build-kernel: $ko missing" >&2; exit 1; }
       deps=$(strings -a "$ko" | sed -n 's/^depends=//p' | tr ',' ' ')
       for d in $deps; do grep -qx "$d" "$IRD/lib/modules/load-order" \
         || { echo "build-kernel: $m needs $d, not loaded before it" >&2; exit 1; }; done
       cp "$ko" "$IRD/lib/modules/"
       echo "$m" >>"$IRD/lib/modules/load-order" ;;
    *) echo "build-kernel: $sym is not enabled in $config" >&2; exit 1 ;;
  esac
done
echo "$release"
