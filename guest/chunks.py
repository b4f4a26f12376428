#!/usr/bin/python3
"""guest/chunks.py A B [CHUNK_KIB]: how much of memory file B the store would already hold from memory file A.

Hashes both files in chunks (512 KiB by default, the store's chunk size) and prints one JSON line:
  chunks        chunks per file
  zeroA/zeroB   all-zero chunks in each (a file that is all zeros was snapshotted with share=off by mistake)
  sameOffset    non-zero chunks of B equal to A's chunk at the same offset
  inA           non-zero chunks of B whose content occurs anywhere in A (what content addressing shares)
  shareNonZero  inA / non-zero chunks of B;  shareAll  (inA + zeroB) / chunks
  changedPagesMiB  4 KiB pages that differ at the same offset (how much B really wrote over A)
Holes are read as zeros (the files are sparse), so reading is cheap where the guest never wrote.
"""
import hashlib
import json
import sys


def chunk_hashes(path, size):
    zero = bytes(size)
    out = []
    with open(path, "rb") as f:
        while True:
            b = f.read(size)
            if not b:
                return out
            out.append(None if b == zero[:len(b)] else hashlib.sha256(b).digest())


def changed_pages(a, b, page=4096):
    """4 KiB pages that differ between the files at the same offset: what the second snapshot really wrote."""
    n = 0
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if not x and not y:
                return n
            if x != y:
                n += sum(1 for i in range(0, max(len(x), len(y)), page) if x[i:i + page] != y[i:i + page])


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    size = int(argv[2]) * 1024 if len(argv) == 3 else 512 * 1024
    a, b = chunk_hashes(argv[0], size), chunk_hashes(argv[1], size)
    in_a = set(h for h in a if h is not None)
    nonzero_b = [(i, h) for i, h in enumerate(b) if h is not None]
    same = sum(1 for i, h in nonzero_b if i < len(a) and a[i] == h)
    shared = sum(1 for _, h in nonzero_b if h in in_a)
    zero_b = len(b) - len(nonzero_b)
    print(json.dumps({
        "chunkKiB": size // 1024, "chunks": len(b),
        "zeroA": sum(1 for h in a if h is None), "zeroB": zero_b,
        "nonZeroB": len(nonzero_b), "sameOffset": same, "inA": shared,
        "shareNonZero": round(shared / len(nonzero_b), 4) if nonzero_b else None,
        "shareAll": round((shared + zero_b) / len(b), 4) if b else None,
        "changedPagesMiB": round(changed_pages(argv[0], argv[1]) * 4096 / (1 << 20), 1),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
