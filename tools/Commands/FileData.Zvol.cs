using SmartOS.Storage;

namespace SmartOS.Cli.Commands;

/// <summary>
/// dd onto a volume's raw device, /dev/zvol/rdsk/POOL/VOLUME (or /dev/zvol/dsk/...), as an operator
/// fills a bhyve disk or a zvol image on SmartOS: the input (a file or standard input) is written
/// from seek= blocks of obs= bytes on, through the dataset layer's volume I/O, and committed. A device
/// is never truncated (conv=notrunc is implied), and a write past the volume's end fails as a disk's
/// does, after the blocks before it were written.
/// </summary>
public static partial class FileData
{
    private const string ZvolRaw = "/dev/zvol/rdsk/", ZvolBlock = "/dev/zvol/dsk/";

    /// <summary>The volume a device path names, or null when the path is not a zvol device.</summary>
    private static string? ZvolOf(string? path)
    {
        if (path is null) return null;
        if (path.StartsWith(ZvolRaw, StringComparison.Ordinal)) return path[ZvolRaw.Length..];
        if (path.StartsWith(ZvolBlock, StringComparison.Ordinal)) return path[ZvolBlock.Length..];
        return null;
    }

    private static async Task<int> DdToVolumeAsync(CommandContext ctx, DdOptions o, string volume)
    {
        var pool = ctx.Host.Pools.Find(volume.Split('/')[0]);
        if (pool is null || !pool.Datasets.Get(volume, "type", out var type).IsOk || type.Value != "volume")
        {
            ctx.Err.WriteLine($"dd: {o.Output}: open: No such file or directory");
            return 2;
        }
        if (FileTree.Open(ctx, "dd") is not { } tree) return 1;
        ZplFileSystem? inFs = null;
        long inInode = 0;
        if (o.Input is not null)
        {
            var status = OpenRead(tree, o.Input, out inFs, out inInode);
            if (status != StorageStatus.Ok) { ctx.Err.WriteLine($"dd: {o.Input}: open: {FileTree.Strerror(status)}"); return 2; }
        }
        var buffer = new byte[o.Ibs];
        long inPos = o.Skip * o.Ibs, outPos = o.Seek * o.Obs, full = 0, part = 0;
        int code = 0;
        for (long records = 0; o.Count < 0 || records < o.Count; records++)
        {
            int n;
            if (inFs is not null)
            {
                var read = inFs.Read(inInode, inPos, buffer, out n);
                if (!read.IsOk) { ctx.Err.WriteLine($"dd: {o.Input}: read error: {FileTree.Strerror(read.Status)}"); code = 2; break; }
                inPos += n;
            }
            else n = ctx.StdinBytes is null ? 0 : await Fill(ctx.StdinBytes, buffer, ctx.Cancel);
            if (n == 0) break;
            if (n == buffer.Length) full++; else part++;
            var written = pool.Datasets.WriteVolume(volume, outPos, buffer.AsSpan(0, n));
            if (!written.IsOk) { ctx.Err.WriteLine($"dd: {o.Output}: write error: No space left on device"); code = 2; break; }
            outPos += n;
        }
        pool.Commit();
        ctx.Err.WriteLine($"{full}+{part} records in");
        ctx.Err.WriteLine($"{full}+{part} records out");
        return tree.Finish(code);
    }
}
