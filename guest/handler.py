"""The guest's "function": a Python runtime with real libraries and a fragmented heap, serving requests.

Run by the guest's /init as `python3 /handler.py [HEAP_MIB]` on the serial console.

At start it imports real libraries and builds about HEAP_MIB (default 48) MiB of Python objects of varied
sizes and kinds, each with content derived from its index, then frees every other one and hands the freed
pages back to the kernel (malloc_trim). That leaves a FRAGMENTED heap: pages the guest kernel considers free
sit in the same 512 KiB chunks as live data, so a balloon inflate/deflate (REMOVE events) followed by reuse
hits chunks that also hold data which must survive: the case that exposes lazy-loader bugs.

Protocol, one line each way. Request: a JSON object {"id": N, "op": ...}. Answer: "@@ANSWER " + JSON with the
same id, always carrying "mono" (time.monotonic() of the guest: it advances only while the VM runs, so it
measures the stall the guest saw) and "heapOk" (every live object's CRC recomputed and compared with the one
recorded at start; pass "verify": false to skip it when measuring latency).
Ops: ping | work {n, seed} (deterministic result: see work()) | churn {mib} (allocate, verify, free new
objects, then verify the old heap) | meminfo (MemTotal/MemFree/MemAvailable in KiB) | layout (free pages
per 512 KiB chunk of guest-physical memory: see layout()).

work() is importable (importing this module does nothing else), so the host checks answers by computing
them with its own Python.
"""
import os
import sys
import time

T0 = time.monotonic()

import base64  # noqa: E402  (imported after T0 on purpose: the import time is part of the start-up)
import collections  # noqa: E402
import datetime  # noqa: E402
import decimal  # noqa: E402
import gc  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import struct  # noqa: E402
import zlib  # noqa: E402
from array import array  # noqa: E402

try:
    import sqlite3
except ImportError:  # the host check still works without it; the answer says which
    sqlite3 = None

ANSWER = "@@ANSWER "
READY = "@@READY "
MIB = 1 << 20


def content(tag, i, n):
    """n bytes that depend only on (tag, i): a SHA-256 digest repeated."""
    d = hashlib.sha256(b"%s:%d" % (tag, i)).digest()
    return (d * (n // 32 + 1))[:n]


def make_object(tag, i, rng):
    """One object of a kind and size picked by rng; the mix spreads it over all three of the process's
    allocators: pymalloc arenas (small), the brk heap (medium), mmap (>= 128 KiB)."""
    r = rng.random()
    if r < 0.60:    # medium bytes, log-uniform 512 B .. 64 KiB: the glibc heap
        return content(tag, i, int(512 * (128 ** rng.random())))
    if r < 0.63:    # large bytearray, 128 .. 384 KiB: its own mmap, unmapped when freed
        return bytearray(content(tag, i, rng.randrange(128 << 10, 384 << 10)))
    if r < 0.90:    # a cluster of small strings: pymalloc
        return [f"{tag.decode()}-{i}-{k}-" + "x" * (k % 40) for k in range(rng.randrange(8, 64))]
    # a small dict of ints, floats and tuples
    return {f"k{k}": (i * k, float(k) / 3.0, str(i)) for k in range(rng.randrange(4, 32))}


def object_crc(o):
    """CRC of an object's content; the same for an object and its exact regeneration."""
    if isinstance(o, (bytes, bytearray)):
        return zlib.crc32(o)
    if isinstance(o, list):
        return zlib.crc32("\n".join(o).encode())
    return zlib.crc32(repr(sorted(o.items())).encode())


def object_size(o):
    if isinstance(o, (bytes, bytearray)):
        return len(o)
    if isinstance(o, list):
        return sum(sys.getsizeof(s) for s in o) + sys.getsizeof(o)
    return sys.getsizeof(o) + sum(sys.getsizeof(v) for v in o.values())


def malloc_trim():
    """Give free pages inside the heap back to the kernel (glibc releases whole free pages anywhere in the
    heap, not only at its top): this is what makes the freed pages free in the guest's memory too."""
    try:
        import ctypes
        return ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (ImportError, OSError, AttributeError):
        return -1


class Heap:
    def __init__(self, mib, seed=20240611):
        rng = random.Random(seed)
        objs, total = [], 0
        while total < mib * MIB:
            o = make_object(b"heap", len(objs), rng)
            objs.append(o)
            total += object_size(o)
        self.allocated = total
        for i in range(1, len(objs), 2):   # free every other object: holes between live ones
            objs[i] = None
        gc.collect()
        self.trim = malloc_trim()
        self.objs = objs
        self.crcs = array("I", (object_crc(o) if o is not None else 0 for o in objs))
        self.live = sum(object_size(o) for o in objs if o is not None)

    def verify(self):
        """(number of live objects whose CRC changed, ms)."""
        t = time.monotonic()
        bad = sum(1 for o, c in zip(self.objs, self.crcs) if o is not None and object_crc(o) != c)
        return bad, round((time.monotonic() - t) * 1000, 1)


def layout(chunk_pages=128):
    """Where the guest's free pages lie, by 512 KiB chunk of guest-physical memory (/proc/kpageflags; the guest
    runs us as root). The buddy allocator flags only the FIRST page of a free block, so this counts chunks
    holding at least one free block (withFree) and, among them, chunks that also hold a page in use (any other
    flag: freeAndUsed) or a process's anonymous page, i.e. this heap (freeAndAnon). Lower bounds, all of them:
    the chunks where a balloon REMOVE punches free pages next to data that must survive."""
    parts = []
    try:   # reads must be multiples of 8 bytes (readall's growing buffer is not: EINVAL)
        fd = os.open("/proc/kpageflags", os.O_RDONLY)
        try:
            while chunk := os.read(fd, 1 << 16):
                parts.append(chunk)
        finally:
            os.close(fd)
    except OSError as e:
        return {"error": str(e)}
    flags = b"".join(parts)
    step = chunk_pages * 8                                   # one 64-bit entry per page
    buddy = sum(1 << (10 + 64 * i) for i in range(chunk_pages))   # KPF_BUDDY = 10
    anon = buddy << 2                                            # KPF_ANON = 12
    other = ((1 << (64 * chunk_pages)) - 1) ^ buddy
    out = {"chunks": 0, "freeBlocks": 0, "withFree": 0, "freeAndUsed": 0, "freeAndAnon": 0}
    for c in range(0, len(flags), step):
        x = int.from_bytes(flags[c:c + step], "little")     # a whole chunk's flags as one integer
        out["chunks"] += 1
        if x & buddy:
            out["withFree"] += 1
            out["freeBlocks"] += bin(x & buddy).count("1")
            out["freeAndUsed"] += bool(x & other)
            out["freeAndAnon"] += bool(x & anon)
    return out


def churn(mib, tag):
    """Allocate about mib MiB of new objects with known content, check each against a regeneration, free.
    Object i comes from its own small seed, so regenerating it needs nothing kept but i."""
    base = zlib.crc32(tag) << 24
    objs, total = [], 0
    while total < mib * MIB:
        o = make_object(tag, len(objs), random.Random(base + len(objs)))
        objs.append(o)
        total += object_size(o)
    bad = sum(1 for i, o in enumerate(objs) if o != make_object(tag, i, random.Random(base + i)))
    n = len(objs)
    del objs
    gc.collect()
    malloc_trim()
    return {"objects": n, "mib": round(total / MIB, 1), "bad": bad, "churnOk": bad == 0}


def work(n, seed):
    """A deterministic mix of real library work; the same answer on any CPython 3.11."""
    items = [{"i": i, "name": f"item-{seed}-{i}",
              "price": str((decimal.Decimal(i * seed + 1) / 7).quantize(decimal.Decimal("0.0001"))),
              "tags": [t for t in ("a", "b", "c", "d") if (i * seed) % (len(t) + 2 + ord(t) % 3) == 0]}
             for i in range(n)]
    blob = json.dumps(items, sort_keys=True, separators=(",", ":"))
    raw = blob.encode()
    out = {
        "sha256": hashlib.sha256(raw).hexdigest(),
        "crc32": zlib.crc32(raw),
        "roundtrip": json.loads(blob) == items and zlib.decompress(zlib.compress(raw)) == raw,
        "total": str(sum(decimal.Decimal(x["price"]) for x in items)),
        "sevens": len(re.findall(r'"item-\d+-\d*7"', blob)),
        "tags": dict(sorted(collections.Counter(t for x in items for t in x["tags"]).items())),
        "b64": base64.b64encode(hashlib.md5(raw).digest()).decode(),
        "packed": struct.unpack("<Q", hashlib.blake2b(raw, digest_size=8).digest())[0],
        "date": (datetime.datetime(2024, 1, 1) + datetime.timedelta(seconds=n * seed * 37)).isoformat(),
    }
    if sqlite3 is not None:
        db = sqlite3.connect(":memory:")
        db.execute("create table t (i integer, name text, price text)")
        db.executemany("insert into t values (?, ?, ?)", [(x["i"], x["name"], x["price"]) for x in items])
        out["sql"] = list(db.execute("select count(*), sum(i * i), max(name) from t where i % 3 = 1").fetchone())
        db.close()
    return out


def emit(prefix, obj):
    os.write(1, (prefix + json.dumps(obj, separators=(",", ":")) + "\n").encode())


def handle(heap, req):
    op = req.get("op")
    ans = {"id": req.get("id"), "op": op, "ok": True}
    t = time.monotonic()
    if op == "ping":
        pass
    elif op == "work":
        ans["result"] = work(int(req.get("n", 1000)), int(req.get("seed", 1)))
    elif op == "meminfo":   # to see a balloon from inside: MemTotal drops as it inflates
        with open("/proc/meminfo") as f:
            ans["result"] = {k: int(v.split()[0]) for k, v in (ln.split(":", 1) for ln in f)
                             if k in ("MemTotal", "MemFree", "MemAvailable")}
    elif op == "layout":
        ans["result"] = layout()
    elif op == "churn":
        ans["result"] = churn(float(req.get("mib", 32)), b"churn%d" % int(req.get("id") or 0))
        ans["ok"] = ans["result"]["churnOk"]
    else:
        ans.update(ok=False, error=f"unknown op {op!r}")
    ans["opMs"] = round((time.monotonic() - t) * 1000, 1)
    if req.get("verify", True):
        bad, ms = heap.verify()
        ans.update(heapOk=bad == 0, heapBad=bad, verifyMs=ms)
    ans["mono"] = time.monotonic()
    return ans


def serve(heap):
    buf = b""
    while True:
        chunk = os.read(0, 65536)
        if not chunk:
            if not os.isatty(0):
                return        # a pipe (a test on the host) ended
            time.sleep(0.1)   # a console does not end; do not spin if it ever reports EOF
            continue
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            line = line.strip()
            if not line:
                continue
            try:
                req = json.loads(line)
                if not isinstance(req, dict):
                    raise ValueError("request is not a JSON object")
            except ValueError as e:
                emit(ANSWER, {"id": None, "ok": False, "error": f"bad request: {e}", "mono": time.monotonic()})
                continue
            try:
                ans = handle(heap, req)
            except Exception as e:  # an answer, never a dead runtime
                ans = {"id": req.get("id"), "ok": False, "error": f"{type(e).__name__}: {e}",
                       "mono": time.monotonic()}
            emit(ANSWER, ans)


def main():
    try:  # init already set the console raw/-echo; make sure, in case the runtime is started another way
        import tty
        tty.setraw(0)
    except Exception:
        pass
    mib = float(sys.argv[1]) if len(sys.argv) > 1 else 48.0
    t_imports = time.monotonic()
    before = layout()
    heap = Heap(mib)
    bad, ms = heap.verify()
    emit(READY, {"mono": time.monotonic(), "startS": round(time.monotonic() - T0, 3),
                 "importS": round(t_imports - T0, 3), "allocatedMiB": round(heap.allocated / MIB, 1),
                 "liveMiB": round(heap.live / MIB, 1), "objects": len(heap.objs), "mallocTrim": heap.trim,
                 "heapOk": bad == 0, "verifyMs": ms, "sqlite3": sqlite3 is not None,
                 "python": sys.version.split()[0], "layoutBefore": before, "layoutAfter": layout()})
    serve(heap)


if __name__ == "__main__":
    main()
