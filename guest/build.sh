#!/usr/bin/env bash
# guest/build.sh [OUTDIR] - builds the real guest: OUTDIR/vmlinux, OUTDIR/initramfs.cpio.gz, OUTDIR/versions.txt.
#
# Everything that goes into the guest comes from Debian packages (apt-get download + dpkg-deb -x), never from the
# host's own file system, so the guest is the same on every machine that sees the same package versions.
# Idempotent: OUTDIR/stamp records the exact .deb files (name + SHA256 from the archive index) and the hash of
# the input files (build*.sh, init, handler.py); when it matches, nothing is done.
# Default OUTDIR: $ROOT/.work/guest. Needs apt access (runs as root, or with sudo for apt_need).
# shellcheck source-path=SCRIPTDIR/.. source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
HERE="$ROOT/guest"
OUT="$(realpath -m "${1:-$ROOT/.work/guest}")"
apt_need binutils xz-utils cpio gzip python3

# The kernel package: linux-image-amd64 is a meta package whose dependency names the real one.
if ! apt-cache show linux-image-amd64 >/dev/null 2>&1; then apt-get update -qq; fi
KPKG="$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')"
[ -n "$KPKG" ] || { echo "build: cannot resolve linux-image-amd64's kernel package" >&2; exit 1; }

# Python 3.11 and the shared libraries its binary and the kept extension modules need (checked below: the
# build fails naming any library that none of these packages provides).
PY_PKGS=(python3.11-minimal libpython3.11-minimal libpython3.11-stdlib)
LIB_PKGS=(libc6 zlib1g libexpat1 libbz2-1.0 libffi8 liblzma5 libsqlite3-0 libuuid1)
PKGS=("$KPKG" busybox-static "${PY_PKGS[@]}" "${LIB_PKGS[@]}")

# --print-uris names each .deb with its version and SHA256 without downloading: that is the stamp's first half.
uris="$(apt-get download --print-uris "${PKGS[@]}" 2>/dev/null)"
[ "$(grep -c . <<<"$uris")" -eq ${#PKGS[@]} ] || { echo "build: apt-get cannot locate all of: ${PKGS[*]}" >&2; exit 1; }
stamp="$( { awk '{print $2, $4}' <<<"$uris" | sort; sha256sum "$HERE"/build*.sh "$HERE/init" "$HERE/handler.py" | awk '{print $1}'; } \
  | sha256sum | cut -d' ' -f1)"
if [ -f "$OUT/stamp" ] && [ "$(cat "$OUT/stamp")" = "$stamp" ] \
   && [ -s "$OUT/vmlinux" ] && [ -s "$OUT/initramfs.cpio.gz" ] && [ -s "$OUT/versions.txt" ]; then
  say "guest assets in $OUT are up to date"
  exit 0
fi

mkdir -p "$OUT/debs"
missing=()
while read -r _url file _size _sha; do [ -s "$OUT/debs/$file" ] || missing+=("${file%%_*}"); done <<<"$uris"
if [ ${#missing[@]} -gt 0 ]; then
  say "downloading ${missing[*]} into $OUT/debs"
  # As root, apt warns that its sandbox user cannot write here; downloading as root is what we want.
  (cd "$OUT/debs" && apt-get download -q -o APT::Sandbox::User=root "${missing[@]}" >/dev/null)
fi

# One staging root with every package extracted: the closure below resolves libraries only inside it.
STAGE="$OUT/stage"; PKGROOT="$STAGE/pkgs"; IRD="$STAGE/initramfs"
rm -rf "$STAGE"; mkdir -p "$PKGROOT" "$IRD"
: >"$STAGE/versions"
while read -r _url file _size _sha; do
  deb="$OUT/debs/$file"
  dpkg-deb -x "$deb" "$PKGROOT"
  echo "$(dpkg-deb -f "$deb" Package)=$(dpkg-deb -f "$deb" Version)" >>"$STAGE/versions"
done <<<"$uris"

"$HERE/build-kernel.sh" "$PKGROOT" "$OUT/vmlinux.new" "$IRD" >"$STAGE/kernel_release"
"$HERE/build-python.sh" "$PKGROOT" "$IRD"

# busybox: the static binary and the applets init uses.
mkdir -p "$IRD/bin" "$IRD/proc" "$IRD/sys" "$IRD/dev" "$IRD/tmp"
cp "$PKGROOT/bin/busybox" "$IRD/bin/busybox"
for a in sh mount insmod stty cat echo sleep ls grep head tr sync free; do ln -sf busybox "$IRD/bin/$a"; done
install -m 0755 "$HERE/init" "$IRD/init"
install -m 0644 "$HERE/handler.py" "$IRD/handler.py"

say "packing the initramfs"
# Sorted names, owner 0 and one fixed mtime (nothing in the guest reads mtimes: the .pyc are sourceless)
# make identical inputs give an identical archive, hence identical guest memory across builds.
find "$IRD" -exec touch -h -d @0 {} +
(cd "$IRD" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --reproducible --quiet | gzip -6 -n) \
  >"$OUT/initramfs.cpio.gz.new"

{ echo "# guest assets built by guest/build.sh $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  sort "$STAGE/versions"
  echo "kernel_release=$(cat "$STAGE/kernel_release")"
  echo "initramfs_unpacked_kib=$(du -sk "$IRD" | cut -f1)"
  echo "initramfs_gz_bytes=$(stat -c %s "$OUT/initramfs.cpio.gz.new")"
  echo "inputs_stamp=$stamp"; } >"$OUT/versions.txt.new"

mv "$OUT/vmlinux.new" "$OUT/vmlinux"; mv "$OUT/initramfs.cpio.gz.new" "$OUT/initramfs.cpio.gz"
mv "$OUT/versions.txt.new" "$OUT/versions.txt"
echo "$stamp" >"$OUT/stamp"
rm -rf "$STAGE"   # the .debs stay as a download cache
say "guest built: $(du -h "$OUT/vmlinux" | cut -f1) vmlinux, $(du -h "$OUT/initramfs.cpio.gz" | cut -f1) initramfs ($OUT)"
