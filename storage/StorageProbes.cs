using System.Runtime.CompilerServices;
using SmartOS.Kernel.Trace;

namespace SmartOS.Storage;

/// <summary>
/// The io and zfs DTrace providers over a host's pools (issue 14; kernel/Trace/Probe.cs). One set
/// of probes per host, shared by its pools (PoolOptions.Probes); they are the global zone's, as
/// illumos shows kernel probes to a zone's dtrace only with dtrace_kernel, which a zone never has.
///
/// io, illumos's stable provider (the Dynamic Tracing Guide's io chapter, io.d's translators), fired
/// for every block a pool reads from or writes to a leaf vdev: data, indirect and dnode blocks, raidz
/// columns, uberblocks and labels (not the label reads of an import, which happen before a pool exists):
///   io:genunix:bdev_strategy:start    the request is issued
///   io:genunix:biowait:wait-start     the pool starts waiting for it
///   io:genunix:biodone:done           the device has finished it (b_resid, b_error, B_ERROR set)
///   io:genunix:biowait:wait-done      the pool has it
/// Every leaf I/O here is synchronous, so each fires all four, in that order, as a buf that a thread
/// waits on in biowait does on illumos.
///   args[0] bufinfo_t *   b_flags (B_BUSY | B_READ or B_WRITE; done adds B_DONE, and B_ERROR when
///                         it failed), b_bcount (bytes asked), b_blkno and b_lblkno (the offset on
///                         the leaf's file in 512-byte blocks, DEV_BSIZE), b_resid (bytes not
///                         transferred, at done), b_error (EIO when it failed), b_bufsize, b_addr,
///                         b_iodone, b_edev (0: no such things here)
///   args[1] devinfo_t *   dev_statname the leaf's file name as `zpool status` names it (d0),
///                         dev_pathname its full path, dev_name "file" (ZFS's vdev type for a file),
///                         dev_instance and dev_minor the leaf's index in the pool, dev_major 0
///   args[2] fileinfo_t *  "&lt;none&gt;" names and fi_offset -1: vdev I/O belongs to no file, as on
///                         illumos, where ZFS's zio never sets b_file
///
/// zfs, the SDT probes illumos's zfs module has under these names (txg.c, arc.c), with provider
/// zfs rather than sdt (this project has no sdt provider; module and names are illumos's):
///   zfs:zfs:txg_sync_thread:txg-syncing   a commit starts: arg0 the pool's name (illumos: its
///                                         dsl_pool_t *), arg1 the txg being written
///   zfs:zfs:txg_sync_thread:txg-synced    the commit's uberblocks are durable: same arguments
///   zfs:zfs:arc_read:arc-hit              a block was found in the cache (Pool.cs rule 11)
///   zfs:zfs:arc_read:arc-miss             it was not and is read from the vdevs
///     args[0] arc_buf_hdr_t * (b_size: logical size, b_birth: birth txg, b_spa: the pool's
///     guid), for arc-miss arg2 the size read, as arc.c's DTRACE_PROBE4 passes it (arg1, its
///     blkptr_t, and arg3, its bookmark, have no type here and are 0).
///
/// A disabled site reads its probes' Enabled fields and nothing else (Probe.cs rule 1); an
/// enabled one refills this object's firing buffers, so firing allocates nothing.
/// </summary>
public sealed class StorageProbes
{
    public readonly Probe IoStart, IoWaitStart, IoDone, IoWaitDone;
    public readonly Probe TxgSyncing, TxgSynced, ArcHit, ArcMiss;

    // sys/buf.h's flags, io.d's B_* inlines.
    public const int BBusy = 0x1, BDone = 0x2, BError = 0x4, BRead = 0x40, BWrite = 0x100;
    public const int DevBsize = 512, Eio = 5;

    /// <summary>Probes no consumer can reach: a pool's when it was opened without a registry.</summary>
    public static readonly StorageProbes None = new(new ProbeRegistry());

    private static readonly ConditionalWeakTable<ProbeRegistry, StorageProbes> s_byRegistry = new();

    /// <summary>The host's io and zfs probes, created in its registry the first time a pool asks.</summary>
    public static StorageProbes For(ProbeRegistry registry) => s_byRegistry.GetValue(registry, static r => new StorageProbes(r));

    private readonly Buf _buf = new();
    private readonly ArcHeader _hdr = new();

    private StorageProbes(ProbeRegistry r)
    {
        static string Genunix() => "genunix";
        static string Zfs() => "zfs";
        static string Global() => "global";
        var io = new ProbeType?[] { s_bufinfo, s_devinfo, s_fileinfo };
        IoStart = r.Add("io", Genunix, "bdev_strategy", "start", Global, io);
        IoDone = r.Add("io", Genunix, "biodone", "done", Global, io);
        IoWaitStart = r.Add("io", Genunix, "biowait", "wait-start", Global, io);
        IoWaitDone = r.Add("io", Genunix, "biowait", "wait-done", Global, io);
        TxgSyncing = r.Add("zfs", Zfs, "txg_sync_thread", "txg-syncing", Global);
        TxgSynced = r.Add("zfs", Zfs, "txg_sync_thread", "txg-synced", Global);
        ArcHit = r.Add("zfs", Zfs, "arc_read", "arc-hit", Global, s_arcHdr);
        ArcMiss = r.Add("zfs", Zfs, "arc_read", "arc-miss", Global, s_arcHdr);
    }

    /// <summary>Whether any io probe is enabled: the one test a leaf I/O makes when none is.</summary>
    public bool IoEnabled => IoStart.Enabled | IoDone.Enabled | IoWaitStart.Enabled | IoWaitDone.Enabled;

    /// <summary>A leaf read with the io probes around it (call only when IoEnabled). An IOException
    /// from the device fires done with B_ERROR and EIO, then goes on to the caller.</summary>
    internal int Read(Pool pool, LeafVdev leaf, long offset, Span<byte> destination)
    {
        Begin(pool, leaf, offset, destination.Length, BRead);
        int n;
        try { n = leaf.Io.Read(offset, destination); }
        catch (IOException) { End(destination.Length, Eio); throw; }
        End(destination.Length - n, n == destination.Length ? 0 : Eio);
        return n;
    }

    /// <summary>A leaf write with the io probes around it (call only when IoEnabled).</summary>
    internal void Write(Pool pool, LeafVdev leaf, long offset, ReadOnlySpan<byte> source)
    {
        Begin(pool, leaf, offset, source.Length, BWrite);
        try { leaf.Io.Write(offset, source); }
        catch (IOException) { End(source.Length, Eio); throw; }
        End(0, 0);
    }

    private void Begin(Pool pool, LeafVdev leaf, long offset, int count, int direction)
    {
        var b = _buf;
        b.Flags = BBusy | direction;
        b.Count = count;
        b.BlkNo = offset / DevBsize;
        b.Resid = 0;
        b.Error = 0;
        b.Leaf = leaf;
        b.Instance = InstanceOf(pool, leaf);
        Fire(IoStart);
        Fire(IoWaitStart);
    }

    private void End(int resid, int error)
    {
        var b = _buf;
        b.Flags |= BDone | (error != 0 ? BError : 0);
        b.Resid = resid;
        b.Error = error;
        Fire(IoDone);
        Fire(IoWaitDone);
        b.Leaf = null;
    }

    private void Fire(Probe p)
    {
        if (p.Enabled) p.Fire(new ProbeArgs(ProbeArg.Of(_buf), ProbeArg.Of(_buf), ProbeArg.Of(_buf)));
    }

    private static int InstanceOf(Pool pool, LeafVdev leaf)
    {
        int i = 0;
        foreach (var top in pool.Vdevs)
            foreach (var l in top.Leaves)
            {
                if (l == leaf) return i;
                i++;
            }
        return -1;
    }

    internal void FireTxg(Probe p, Pool pool, long txg) => p.Fire(new ProbeArgs(pool.Name, txg));

    internal void FireArc(Probe p, Pool pool, in BlockPointer bp)
    {
        _hdr.Size = bp.LogicalSize;
        _hdr.Birth = bp.BirthTxg;
        _hdr.Spa = (long)pool.Guid;
        p.Fire(new ProbeArgs(ProbeArg.Of(_hdr), 0, bp.LogicalSize));
    }

    /// <summary>The buf of the leaf I/O being traced: what bufinfo_t, devinfo_t and fileinfo_t translate.</summary>
    private sealed class Buf
    {
        public int Flags, Count, Resid, Error, Instance;
        public long BlkNo;
        public LeafVdev? Leaf;
    }

    private sealed class ArcHeader
    {
        public long Size, Birth, Spa;
    }

    private static Buf B(object o) => (Buf)o;

    private static readonly ProbeType s_bufinfo = new("bufinfo_t",
        ProbeMember.Integer("b_flags", "int", o => B(o).Flags),
        ProbeMember.Integer("b_bcount", "size_t", o => B(o).Count),
        ProbeMember.Integer("b_addr", "caddr_t", _ => 0),
        ProbeMember.Integer("b_lblkno", "uint64_t", o => B(o).BlkNo),
        ProbeMember.Integer("b_blkno", "uint64_t", o => B(o).BlkNo),
        ProbeMember.Integer("b_resid", "size_t", o => B(o).Resid),
        ProbeMember.Integer("b_bufsize", "size_t", o => B(o).Count),
        ProbeMember.Integer("b_iodone", "caddr_t", _ => 0),
        ProbeMember.Integer("b_error", "int", o => B(o).Error),
        ProbeMember.Integer("b_edev", "dev_t", _ => 0));

    private static readonly ProbeType s_devinfo = new("devinfo_t",
        ProbeMember.Integer("dev_major", "int", _ => 0),
        ProbeMember.Integer("dev_minor", "int", o => B(o).Instance),
        ProbeMember.Integer("dev_instance", "int", o => B(o).Instance),
        ProbeMember.Text("dev_name", _ => "file"),
        ProbeMember.Text("dev_statname", o => Path.GetFileName(B(o).Leaf?.Path) ?? ""),
        ProbeMember.Text("dev_pathname", o => B(o).Leaf?.Path ?? ""));

    private static readonly ProbeType s_fileinfo = new("fileinfo_t",
        ProbeMember.Text("fi_name", _ => "<none>"),
        ProbeMember.Text("fi_dirname", _ => "<none>"),
        ProbeMember.Text("fi_pathname", _ => "<none>"),
        ProbeMember.Integer("fi_offset", "offset_t", _ => -1),
        ProbeMember.Text("fi_fs", _ => "<none>"),
        ProbeMember.Text("fi_mount", _ => "<none>"),
        ProbeMember.Integer("fi_oflags", "int", _ => 0));

    private static readonly ProbeType s_arcHdr = new("arc_buf_hdr_t",
        ProbeMember.Integer("b_size", "uint64_t", o => ((ArcHeader)o).Size),
        ProbeMember.Integer("b_birth", "uint64_t", o => ((ArcHeader)o).Birth),
        ProbeMember.Integer("b_spa", "uint64_t", o => ((ArcHeader)o).Spa));
}
