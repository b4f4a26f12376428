#!/usr/bin/env bash
# guest/build-python.sh PKGROOT IRD - called by build.sh: puts Debian's python3.11 into the initramfs tree IRD.
# The binary, a trimmed standard library, precompiled bytecode and exactly the shared libraries needed (the
# ELF NEEDED closure, resolved only inside PKGROOT, the extracted .debs: never from the host).
# Why trim: the initramfs is unpacked into the guest's RAM (256 MiB) and stays there.
set -euo pipefail
PKGROOT=$1 IRD=$2
LIBDIRS=(lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu)

mkdir -p "$IRD/usr/bin" "$IRD/usr/lib"
cp "$PKGROOT/usr/bin/python3.11" "$IRD/usr/bin/"
ln -sf python3.11 "$IRD/usr/bin/python3"
cp -a "$PKGROOT/usr/lib/python3.11" "$IRD/usr/lib/"
lib="$IRD/usr/lib/python3.11"

# Not needed by a server process: tests, GUIs, installers, docs, 2to3, build configuration, CJK codecs.
rm -rf "$lib"/{test,idlelib,tkinter,turtledemo,ensurepip,lib2to3,pydoc_data,venv,config-3.11-x86_64-linux-gnu} \
       "$lib"/{turtle.py,pydoc.py,doctest.py,__phello__,__hello__.py,antigravity.py,this.py} \
       "$lib"/{site-packages,dist-packages} "$lib/unittest/test" "$lib/sqlite3/test" "$lib/ctypes/test"
# Extension modules: drop tests, terminals, dbm/nis, audio, CJK, and OpenSSL's (hashlib falls back to the
# built-in _sha256/_md5/_blake2..., which this python has; libcrypto alone would add ~5 MB).
(cd "$lib/lib-dynload" && rm -f _test*.so _ctypes_test*.so _xx*.so xxlimited*.so _curses*.so readline*.so \
   _dbm*.so nis*.so ossaudiodev*.so audioop*.so _codecs_*.so _multibytecodec*.so _crypt*.so _ssl*.so _hashlib*.so)
find "$lib" -name '__pycache__' -prune -exec rm -rf {} +

# Shared-library closure: breadth-first over NEEDED entries, each resolved in the packages' library dirs.
resolve() { # soname -> path relative to PKGROOT
  local d; for d in "${LIBDIRS[@]}"; do [ -e "$PKGROOT/$d/$1" ] && { echo "$d/$1"; return 0; }; done
  echo "build-python: no package provides $1 (add its package to LIB_PKGS in build.sh)" >&2; return 1
}
queue=("$IRD/usr/bin/python3.11" "$lib"/lib-dynload/*.so)
seen=" "
while [ ${#queue[@]} -gt 0 ]; do
  elf=${queue[0]}; queue=("${queue[@]:1}")
  for so in $(readelf -d "$elf" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    case $seen in *" $so "*) continue ;; esac
    seen+="$so "
    rel=$(resolve "$so")
    mkdir -p "$IRD/$(dirname "$rel")"
    cp -L "$PKGROOT/$rel" "$IRD/$rel"          # -L: the soname is a symlink to the versioned file
    queue+=("$IRD/$rel")
  done
done
# The dynamic loader named in the binary's PT_INTERP (/lib64/ld-linux-x86-64.so.2, a link in libc6).
mkdir -p "$IRD/lib64" "$IRD/lib/x86_64-linux-gnu"
cp -L "$PKGROOT/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" "$IRD/lib/x86_64-linux-gnu/"
ln -sf /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$IRD/lib64/ld-linux-x86-64.so.2"

# Bytecode, compiled by the packaged python itself (run through the packaged loader: PKGROOT's /lib64 link is
# absolute and would pick the host's). Sourceless: -b writes foo.pyc beside foo.py and the .py files go, which
# halves the library (tracebacks keep file names and line numbers, lose the source text). -s/-p make the
# code objects name /usr/lib/... instead of this build directory.
PYTHONHOME="$IRD/usr" "$IRD/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" \
  --library-path "$IRD/lib/x86_64-linux-gnu:$IRD/usr/lib/x86_64-linux-gnu" "$IRD/usr/bin/python3.11" -I \
  -m compileall -q -b -j 0 -s "$IRD" -p / "$lib" >/dev/null
find "$lib" -name '*.py' -delete
find "$lib" -name '__pycache__' -prune -exec rm -rf {} +
