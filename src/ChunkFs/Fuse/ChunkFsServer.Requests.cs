using System.Runtime.CompilerServices;
using System.Text;
using Snapshots.ChunkFs.Native;
using Snapshots.Store.Chunks;

namespace Snapshots.ChunkFs.Fuse;

/// <summary>Every request but READ: a flat, read-only directory of immutable files.</summary>
public sealed partial class ChunkFsServer
{
    /// <summary>Names and attributes never change while mounted: the kernel may cache them for an hour.</summary>
    private const ulong CacheSeconds = 3600;

    private unsafe void Dispatch(FuseInHeader* h, int length)
    {
        byte* body = (byte*)(h + 1);
        int bodyLength = length - sizeof(FuseInHeader);
        switch (h->Opcode)
        {
            case FuseAbi.FUSE_READ:
                if (bodyLength >= sizeof(FuseReadIn)) Read(h, (FuseReadIn*)body);
                else ReplyError(h->Unique, LibC.EINVAL);
                return;
            case FuseAbi.FUSE_INIT:
                Init(h, (FuseInitIn*)body);
                return;
            case FuseAbi.FUSE_LOOKUP:
                Lookup(h, body, bodyLength);
                return;
            case FuseAbi.FUSE_GETATTR:
                GetAttr(h);
                return;
            case FuseAbi.FUSE_SETATTR:
                SetAttr(h, (FuseSetattrIn*)body);
                return;
            case FuseAbi.FUSE_OPEN:
                Open(h);
                return;
            case FuseAbi.FUSE_OPENDIR:
                Reply(h->Unique, new FuseOpenOut { OpenFlags = FuseAbi.FOPEN_CACHE_DIR });
                return;
            case FuseAbi.FUSE_READDIR:
                ReadDir(h, (FuseReadIn*)body);
                return;
            case FuseAbi.FUSE_STATFS:
                StatFs(h);
                return;
            case FuseAbi.FUSE_FALLOCATE:
                Fallocate(h, (FuseFallocateIn*)body);
                return;
            case FuseAbi.FUSE_RELEASE or FuseAbi.FUSE_RELEASEDIR or FuseAbi.FUSE_FLUSH or FuseAbi.FUSE_FSYNC:
                ReplyError(h->Unique, 0);
                return;
            case FuseAbi.FUSE_FORGET or FuseAbi.FUSE_BATCH_FORGET:
                return; // no reply: inodes live as long as the mount
            case FuseAbi.FUSE_DESTROY:
                ReplyError(h->Unique, 0);
                return;
            case FuseAbi.FUSE_WRITE:
                Write(h, (FuseWriteIn*)body, bodyLength);
                return;
            case FuseAbi.FUSE_CREATE or 5 /* READLINK */ or 6 or 8 or 9 or 10 or 11 or 12
                or 13 or 21 /* SETXATTR */ or 24 /* REMOVEXATTR */ or 45 /* RENAME2 */:
                // The images are immutable: a VMM's guest writes go to its private mapping, never here.
                ReplyError(h->Unique, LibC.EROFS);
                return;
            default:
                // INTERRUPT included: answered ENOSYS, the kernel stops sending them; a read waits for its deadline.
                ReplyError(h->Unique, LibC.ENOSYS);
                return;
        }
    }

    private unsafe void Init(FuseInHeader* h, FuseInitIn* init)
    {
        if (init->Major != FuseAbi.FUSE_KERNEL_VERSION)
        {
            _options.Log($"ChunkFs: the kernel speaks FUSE {init->Major}.{init->Minor}; ChunkFs needs 7.x");
            ReplyError(h->Unique, 71); // EPROTO
            return;
        }
        // Offered by the kernel and wanted: parallel reads of one file (ASYNC_READ), requests up to max_read
        // (MAX_PAGES), parallel lookups. Not wanted: a writeback cache (writes are refused), auto invalidation (the
        // files never change; the page cache may keep them across opens).
        uint wanted = FuseAbi.FUSE_ASYNC_READ | FuseAbi.FUSE_MAX_PAGES | FuseAbi.FUSE_PARALLEL_DIROPS;
        var reply = new FuseInitOut
        {
            Major = FuseAbi.FUSE_KERNEL_VERSION,
            Minor = Math.Min(init->Minor, FuseAbi.FUSE_KERNEL_MINOR_VERSION),
            MaxReadahead = (uint)Math.Min(_options.ReadAheadBytes, init->MaxReadahead),
            Flags = init->Flags & wanted,
            MaxBackground = 64,
            CongestionThreshold = 48,
            MaxWrite = MaxWrite,
            TimeGran = 1,
            MaxPages = (ushort)(_options.MaxReadBytes / ChunkGeometry.PageSize),
        };
        Reply(h->Unique, reply);
        _initialized.TrySetResult();
    }

    private unsafe void Lookup(FuseInHeader* h, byte* name, int length)
    {
        var span = new ReadOnlySpan<byte>(name, length);
        int nul = span.IndexOf((byte)0);
        if (nul >= 0) span = span[..nul];
        if (h->NodeId == FuseAbi.FUSE_ROOT_ID)
        {
            foreach (var f in _files)
            {
                if (!NameEquals(f.Name, span)) continue;
                Reply(h->Unique, new FuseEntryOut
                {
                    NodeId = f.NodeId,
                    Generation = 1,
                    EntryValid = CacheSeconds,
                    AttrValid = CacheSeconds,
                    Attr = AttrOf(f),
                });
                return;
            }
        }
        ReplyError(h->Unique, LibC.ENOENT);
    }

    private static bool NameEquals(string name, ReadOnlySpan<byte> utf8)
    {
        if (name.Length != utf8.Length) return false; // names are ASCII (SnapshotName)
        for (int i = 0; i < name.Length; i++) if (name[i] != utf8[i]) return false;
        return true;
    }

    private unsafe void GetAttr(FuseInHeader* h)
    {
        if (!TryAttr(h->NodeId, out var attr)) { ReplyError(h->Unique, LibC.ENOENT); return; }
        Reply(h->Unique, new FuseAttrOut { AttrValid = CacheSeconds, Attr = attr });
    }

    /// <summary>Only a truncate to the same size succeeds: mode, owner, times and size never change (a chown that
    /// "succeeded" would leave the VMM's user facing EACCES later).</summary>
    private unsafe void SetAttr(FuseInHeader* h, FuseSetattrIn* s)
    {
        if (!TryAttr(h->NodeId, out var attr)) { ReplyError(h->Unique, LibC.ENOENT); return; }
        const uint Changes = FuseAbi.FATTR_MODE | FuseAbi.FATTR_UID | FuseAbi.FATTR_GID | FuseAbi.FATTR_ATIME
            | FuseAbi.FATTR_MTIME;
        if ((s->Valid & Changes) != 0 || ((s->Valid & FuseAbi.FATTR_SIZE) != 0 && s->Size != attr.Size))
        {
            ReplyError(h->Unique, LibC.EPERM);
            return;
        }
        Reply(h->Unique, new FuseAttrOut { AttrValid = CacheSeconds, Attr = attr });
    }

    private bool TryAttr(ulong nodeId, out FuseAttr attr)
    {
        if (nodeId == FuseAbi.FUSE_ROOT_ID)
        {
            attr = Stamp(new FuseAttr
            {
                Ino = FuseAbi.FUSE_ROOT_ID,
                Mode = 0x4000 | 0x1C9, // S_IFDIR | 0711: others reach a file by its name, never list them
                Nlink = 2,
            });
            return true;
        }
        if (FileOf(nodeId) is { } f) { attr = AttrOf(f); return true; }
        attr = default;
        return false;
    }

    /// <summary>Mode 0400 for the owner (the VMM's user): read-only, so no one but root can open an image for
    /// writing and map it shared and writable (a page written there would sit in the page cache every restore
    /// shares until its write-back is refused). Firecracker opens its memory file read-only; QEMU before 8.2 opens
    /// it read-write even to map it privately, which only root may then do.</summary>
    private FuseAttr AttrOf(ChunkFsFile f) => Stamp(new FuseAttr
    {
        Ino = f.NodeId,
        Size = (ulong)f.Size,
        Blocks = (ulong)((f.Size + 511) / 512),
        Mode = 0x8000 | 0x100, // S_IFREG | 0400
        Nlink = 1,
        Blksize = ChunkGeometry.PageSize,
    });

    private FuseAttr Stamp(FuseAttr a)
    {
        a.Uid = _uid;
        a.Gid = _gid;
        a.Atime = a.Mtime = a.Ctime = (ulong)_mountedAt;
        return a;
    }

    private unsafe void Open(FuseInHeader* h)
    {
        var f = FileOf(h->NodeId);
        if (f is null) { ReplyError(h->Unique, LibC.EISDIR); return; }
        Interlocked.Increment(ref f.Counters.Opens);
        // KEEP_CACHE: pages read (or pushed by prefetch) stay cached across opens; every restore of the snapshot
        // shares them.
        Reply(h->Unique, new FuseOpenOut { OpenFlags = FuseAbi.FOPEN_KEEP_CACHE });
        // Normally started at mount; here if the kernel had dropped the inode before (a store needs it held).
        if (f.FirstOpen()) StartPrefetch(f);
    }

    private unsafe void ReadDir(FuseInHeader* h, FuseReadIn* r)
    {
        if (h->NodeId != FuseAbi.FUSE_ROOT_ID) { ReplyError(h->Unique, LibC.ENOTDIR); return; }
        var entries = new List<(ulong Ino, string Name, uint Type)>
        {
            (FuseAbi.FUSE_ROOT_ID, ".", 4), (FuseAbi.FUSE_ROOT_ID, "..", 4),
        };
        foreach (var f in _files) entries.Add((f.NodeId, f.Name, 8)); // DT_DIR 4, DT_REG 8
        var buffer = new byte[Math.Min(r->Size, 64u << 10)];
        int used = 0;
        for (int i = (int)Math.Min(r->Offset, (ulong)entries.Count); i < entries.Count; i++)
        {
            var name = Encoding.ASCII.GetBytes(entries[i].Name);
            int size = (sizeof(FuseDirent) + name.Length + 7) & ~7;
            if (used + size > buffer.Length) break;
            var d = new FuseDirent
            {
                Ino = entries[i].Ino, Off = (ulong)(i + 1), NameLen = (uint)name.Length, Type = entries[i].Type,
            };
            Unsafe.WriteUnaligned(ref buffer[used], d);
            name.CopyTo(buffer, used + sizeof(FuseDirent));
            used += size;
        }
        fixed (byte* p = buffer) ReplyBytes(h->Unique, p, used);
    }

    private unsafe void StatFs(FuseInHeader* h)
    {
        ulong blocks = 0;
        foreach (var f in _files) blocks += (ulong)((f.Size + 4095) / 4096);
        Reply(h->Unique, new FuseKstatfs
        {
            Blocks = blocks, Files = (ulong)_files.Length + 1, Bsize = 4096, Frsize = 4096, Namelen = 255,
        });
    }

    /// <summary>Refused (EROFS), and the range dropped from the page cache: the kernel copied the bytes into the
    /// cached pages before asking, and a process that maps them would go on seeing them. Dropped off the reader
    /// thread and after the reply: until the reply the writer holds those pages locked.</summary>
    private unsafe void Write(FuseInHeader* h, FuseWriteIn* w, int length)
    {
        ReplyError(h->Unique, LibC.EROFS);
        if (length < sizeof(FuseWriteIn) || FileOf(h->NodeId) is not { } file) return;
        long offset = (long)Math.Min(w->Offset, long.MaxValue);
        long size = w->Size;
        _options.Log($"ChunkFs: refused a write of {size} bytes at {offset} of '{file.Name}' (pid {h->Pid}); "
            + "dropping those pages from the page cache");
        Interlocked.Increment(ref _missesInFlight); // the descriptor stays open until it is done
        _ = Task.Run(() =>
        {
            try { NotifyInvalidate(file.NodeId, offset, size); }
            finally { Interlocked.Decrement(ref _missesInFlight); }
        });
    }

    /// <summary>A hole punched with the size kept is accepted and changes nothing: QEMU punches the memory file
    /// when a balloon takes pages (even a privately mapped one), then drops its private copies with
    /// MADV_DONTNEED; the image others read stays as it was. Anything else would change the file: refused.
    /// </summary>
    private unsafe void Fallocate(FuseInHeader* h, FuseFallocateIn* a)
    {
        const uint Punch = FuseAbi.FALLOC_FL_PUNCH_HOLE | FuseAbi.FALLOC_FL_KEEP_SIZE;
        ReplyError(h->Unique, FileOf(h->NodeId) is not null && a->Mode == Punch ? 0 : LibC.EOPNOTSUPP);
    }
}
