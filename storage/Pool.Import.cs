namespace SmartOS.Storage;

/// <summary>A pool found by its labels (`zpool import` without a name lists these).</summary>
public sealed record ImportCandidate(string Name, ulong Guid, PoolConfig Config, IReadOnlyDictionary<ulong, string> Paths,
                                     IReadOnlyList<string> Missing, Uberblock? Uberblock)
{
    /// <summary>
    /// ONLINE when every leaf is present and online and an uberblock is valid; DEGRADED when a leaf is
    /// missing or offline but every top vdev still has its blocks (a mirror side, one raidz1 column);
    /// else UNAVAIL.
    /// </summary>
    public string State
    {
        get
        {
            if (Uberblock is null) return "UNAVAIL";
            bool degraded = false;
            foreach (var top in Config.Tops)
            {
                int down = 0;
                foreach (var leaf in top.Leaves) if (leaf.Offline || !Paths.ContainsKey(leaf.Guid)) down++;
                if (down == 0) continue;
                bool usable = top.Kind switch { VdevKind.Mirror => down < top.Leaves.Count, VdevKind.Raidz1 => down == 1, _ => false };
                if (!usable) return "UNAVAIL";
                degraded = true;
            }
            return degraded ? "DEGRADED" : "ONLINE";
        }
    }

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
        // Every label seen, by pool guid: a leaf's config, its file, and the uberblocks in its rings.
        var byGuid = new Dictionary<ulong, List<(PoolConfig Config, string Path, List<Uberblock> Uberblocks)>>();
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
                var configs = new List<PoolConfig>(2);
                string problem = "";
                bool anyLabel = false;
                var uberblocks = new List<Uberblock>();
                for (int l = 0; l < 2; l++)
                {
                    int n;
                    try { n = io.Read(VdevLabel.LabelOffset(l, length), label); }
                    catch (IOException) { continue; }
                    var decoded = VdevLabel.DecodeConfig(label.AsSpan(0, n), out string reason);
                    if (reason != "no label") anyLabel = true;
                    if (decoded is null) { if (reason != "no label") problem = $"label {l}: {reason}"; }
                    else
                    {
                        configs.Add(decoded);
                        if (config is null || decoded.Txg > config.Txg) config = decoded;
                    }
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
                if (!byGuid.TryGetValue(config.PoolGuid, out var seen))
                {
                    byGuid[config.PoolGuid] = seen = [];
                    order.Add(config.PoolGuid);
                }
                // Both labels' trees: L1 keeps the older one while a changed tree awaits its txg (Pool.Admin.cs rule A3).
                foreach (var c in configs)
                    if (c.PoolGuid == config.PoolGuid) seen.Add((c, path, uberblocks));
            }
        }
        foreach (ulong guid in order)
        {
            // The newest vdev tree that a committed uberblock vouches for (its guid sum): labels are
            // rewritten before the txg that commits a changed tree (attach, detach, replace), so a crash
            // between the two leaves newer labels with no uberblock yet, and the older tree still opens.
            var seen = byGuid[guid];
            PoolConfig? chosen = null;
            Uberblock? best = null;
            foreach (var (config, _, _) in seen)
            {
                if (chosen is not null && config.Txg <= chosen.Txg) continue;
                ulong sum = config.GuidSum();
                Uberblock? match = null;
                foreach (var (_, _, ubs) in seen)
                    foreach (var ub in ubs)
                        if (ub.PoolGuid == guid && ub.GuidSum == sum && (match is null || ub.Txg > match.Value.Txg)) match = ub;
                if (match is not null) { chosen = config; best = match; }
            }
            if (chosen is null)
            {
                foreach (var (config, _, _) in seen) if (chosen is null || config.Txg > chosen.Txg) chosen = config;
            }
            var paths = new Dictionary<ulong, string>();
            var members = new HashSet<ulong>();
            foreach (var top in chosen!.Tops) foreach (var leaf in top.Leaves) members.Add(leaf.Guid);
            foreach (var (config, path, _) in seen)
                if (members.Contains(config.LeafGuid) && !paths.ContainsKey(config.LeafGuid)) paths[config.LeafGuid] = path;
            var missing = new List<string>();
            foreach (var top in chosen.Tops)
                foreach (var leaf in top.Leaves)
                    if (!paths.ContainsKey(leaf.Guid)) missing.Add(leaf.FileName);
            pools.Add(new ImportCandidate(chosen.PoolName, guid, chosen with { LeafGuid = 0 }, paths, missing, best));
        }
        return new ImportScan(pools, damaged);
    }
}
