namespace SmartOS.Storage;

/// <summary>A pool found by its labels (`zpool import` without a name lists these).</summary>
public sealed record ImportCandidate(string Name, ulong Guid, PoolConfig Config, IReadOnlyDictionary<ulong, string> Paths,
                                     IReadOnlyList<string> Missing, Uberblock? Uberblock)
{
    /// <summary>ONLINE when every leaf is present and an uberblock is valid, else UNAVAIL.</summary>
    public string State => Missing.Count == 0 && Uberblock is not null ? "ONLINE" : "UNAVAIL";

    public long Txg => Uberblock?.Txg ?? 0;
}

/// <summary>What Import found in a directory: pools, and files whose labels are all damaged.</summary>
public sealed record ImportScan(IReadOnlyList<ImportCandidate> Pools, IReadOnlyList<(string File, string Problem)> Damaged);

public sealed partial class Pool
{
    /// <summary>
    /// Reads the labels of every file in dir (rule 4) and groups them by pool guid; a pool's newest
    /// uberblock is the highest valid txg over every label of every leaf that matches its guid sum.
    /// </summary>
    public static ImportScan Import(string dir, VdevOpener? opener = null)
    {
        opener ??= FileVdevIo.Opener;
        var pools = new List<ImportCandidate>();
        var damaged = new List<(string, string)>();
        if (!Directory.Exists(dir)) return new ImportScan(pools, damaged);
        var files = Directory.GetFiles(dir);
        Array.Sort(files, StringComparer.Ordinal);
        var byGuid = new Dictionary<ulong, (PoolConfig Config, Dictionary<ulong, string> Paths, Uberblock? Best)>();
        var order = new List<ulong>();
        var label = new byte[VdevLabel.LabelSize];
        foreach (var path in files)
        {
            long length = new FileInfo(path).Length;
            if (length < 2L * VdevLabel.LabelSize) continue;
            IVdevIo io;
            try { io = opener(path, writable: false); }
            catch (IOException) { continue; }
            catch (UnauthorizedAccessException) { continue; }
            using (io)
            {
                PoolConfig? config = null;
                string problem = "";
                bool anyLabel = false;
                Uberblock? best = null;
                var uberblocks = new List<Uberblock>();
                for (int l = 0; l < 2; l++)
                {
                    int n;
                    try { n = io.Read(VdevLabel.LabelOffset(l, length), label); }
                    catch (IOException) { continue; }
                    var decoded = VdevLabel.DecodeConfig(label.AsSpan(0, n), out string reason);
                    if (reason != "no label") anyLabel = true;
                    if (decoded is null) { if (reason != "no label") problem = $"label {l}: {reason}"; }
                    else if (config is null || decoded.Txg > config.Txg) config = decoded;
                    if (n < VdevLabel.LabelSize) continue;
                    for (int s = 0; s < VdevLabel.RingSlots; s++)
                    {
                        var slot = label.AsSpan(VdevLabel.RingOffset + s * VdevLabel.UberblockSize, VdevLabel.UberblockSize);
                        if (VdevLabel.TryDecodeUberblock(slot, out var ub)) uberblocks.Add(ub);
                    }
                }
                if (config is null)
                {
                    if (anyLabel) damaged.Add((path, problem));
                    continue;
                }
                // A leaf's label locates it by guid, whatever the file is called now.
                ulong guidSum = config.GuidSum();
                foreach (var ub in uberblocks)
                    if (ub.PoolGuid == config.PoolGuid && ub.GuidSum == guidSum && (best is null || ub.Txg > best.Value.Txg)) best = ub;
                if (!byGuid.TryGetValue(config.PoolGuid, out var entry))
                {
                    entry = (config, new Dictionary<ulong, string>(), null);
                    order.Add(config.PoolGuid);
                }
                entry.Paths[config.LeafGuid] = path;
                if (best is not null && (entry.Best is null || best.Value.Txg > entry.Best.Value.Txg)) entry.Best = best;
                if (config.Txg > entry.Config.Txg) entry.Config = config;
                byGuid[config.PoolGuid] = entry;
            }
        }
        foreach (ulong guid in order)
        {
            var (config, paths, best) = byGuid[guid];
            var missing = new List<string>();
            foreach (var top in config.Tops)
                foreach (var leaf in top.Leaves)
                    if (!paths.ContainsKey(leaf.Guid)) missing.Add(leaf.FileName);
            pools.Add(new ImportCandidate(config.PoolName, guid, config with { LeafGuid = 0 }, paths, missing, best));
        }
        return new ImportScan(pools, damaged);
    }
}
