using System.Globalization;

namespace SmartOS.Storage;

/// <summary>Where a property's value comes from, as the SOURCE column of `zfs get` shows it.</summary>
public enum PropertySource { None, Default, Local, Inherited, Received }

/// <summary>
/// One property of one dataset: Value as `zfs get -p` prints it (sizes in bytes, "none" for an unset
/// quota or reservation, "-" where the property does not apply), Number for the numeric ones.
/// </summary>
public readonly record struct DatasetProperty(string Name, string Value, long? Number, PropertySource Source, string InheritedFrom)
{
    public string SourceText => Source switch
    {
        PropertySource.Local => "local",
        PropertySource.Default => "default",
        PropertySource.Inherited => "inherited from " + InheritedFrom,
        PropertySource.Received => "received",
        _ => "-",
    };
}

/// <summary>
/// What a property is, for a command that prints or checks it before touching a dataset: whether
/// `zfs set` may change it and `zfs inherit` reset it, the kinds it applies to, whether its value is
/// a size, and the values it takes (null: any of its kind).
/// </summary>
public sealed record PropertyInfo(string Name, bool Settable, bool Inheritable, DatasetKinds Applies, bool IsSize, IReadOnlyList<string>? Choices);

/// <summary>Properties (`zfs get/set/inherit`): the table, validation in zfs's words, and the computed read-only ones.</summary>
public sealed partial class DatasetTree
{
    private enum Kind { Size, Choice, Path, Info }

    private sealed record Def(string Name, Kind Kind, bool Inherit, bool Settable, DatasetKinds Applies, string Default, string[]? Choices = null);

    private const DatasetKinds Heads = DatasetKinds.Filesystem | DatasetKinds.Volume;

    // Before s_props: static fields initialise in order.
    private static readonly string[] ZstdLevels = [.. Enumerable.Range(1, 19).Select(n => "zstd-" + n.ToString(CultureInfo.InvariantCulture))];

    /// <summary>The properties in the order `zfs get all` prints them.</summary>
    private static readonly Def[] s_props =
    [
        new("type", Kind.Info, false, false, DatasetKinds.All, ""),
        new("creation", Kind.Info, false, false, DatasetKinds.All, ""),
        new("used", Kind.Info, false, false, DatasetKinds.All, ""),
        new("available", Kind.Info, false, false, Heads, ""),
        new("referenced", Kind.Info, false, false, DatasetKinds.All, ""),
        new("compressratio", Kind.Info, false, false, DatasetKinds.All, ""),
        new("quota", Kind.Size, false, true, DatasetKinds.Filesystem, "none"),
        new("reservation", Kind.Size, false, true, Heads, "none"),
        new("volsize", Kind.Size, false, true, DatasetKinds.Volume, ""),
        new("volblocksize", Kind.Info, false, false, DatasetKinds.Volume, ""),
        new("recordsize", Kind.Size, true, true, DatasetKinds.Filesystem, "131072"),
        new("mountpoint", Kind.Path, true, true, DatasetKinds.Filesystem, ""),
        new("checksum", Kind.Choice, true, true, Heads, "on", ["on", "fletcher4", "sha256", "blake3"]),
        new("compression", Kind.Choice, true, true, Heads, "off", ["on", "off", "lzjb", "gzip", "gzip-1", "gzip-2", "gzip-3", "gzip-4", "gzip-5", "gzip-6", "gzip-7", "gzip-8", "gzip-9", "zle", "lz4", "zstd", .. ZstdLevels]),
        new("atime", Kind.Choice, true, true, DatasetKinds.Filesystem, "on", ["on", "off"]),
        new("readonly", Kind.Choice, true, true, Heads, "off", ["on", "off"]),
        new("zoned", Kind.Choice, true, true, DatasetKinds.Filesystem, "off", ["on", "off"]),
        new("canmount", Kind.Choice, false, true, DatasetKinds.Filesystem, "on", ["on", "off", "noauto"]),
        new("origin", Kind.Info, false, false, Heads, ""),
        new("usedbysnapshots", Kind.Info, false, false, Heads, ""),
        new("usedbydataset", Kind.Info, false, false, Heads, ""),
        new("usedbychildren", Kind.Info, false, false, Heads, ""),
        new("usedbyrefreservation", Kind.Info, false, false, Heads, ""),
        new("refquota", Kind.Size, false, true, DatasetKinds.Filesystem, "none"),
        new("refreservation", Kind.Size, false, true, Heads, "none"),
        new("refcompressratio", Kind.Info, false, false, DatasetKinds.All, ""),
        new("written", Kind.Info, false, false, DatasetKinds.All, ""),
        new("receive_resume_token", Kind.Info, false, false, Heads, ""),
    ];

    /// <summary>Each property's received-value key, made once: the write path asks for compression and checksum and must not allocate.</summary>
    private static readonly Dictionary<string, string> s_receivedKeys = s_props.ToDictionary(d => d.Name, d => ReceivedPrefix + d.Name, StringComparer.Ordinal);

    /// <summary>
    /// Whether the pool writes blocks with this compression value (Compression.cs): zfs's lzjb and zle
    /// are refused, not silently stored uncompressed.
    /// </summary>
    internal static bool IsEnforcedCompression(string value) => CompressionSetting.TryParse(value, out _);

    public static IReadOnlyList<string> PropertyNames
    {
        get { var names = new string[s_props.Length]; for (int i = 0; i < names.Length; i++) names[i] = s_props[i].Name; return names; }
    }

    /// <summary>The description of a property (PropertyInfo), or null for a name zfs does not know.</summary>
    public static PropertyInfo? Describe(string name) =>
        Lookup(name) is { } def ? new PropertyInfo(def.Name, def.Settable, def.Inherit, def.Applies, def.Kind == Kind.Size, def.Choices) : null;

    /// <summary>
    /// Validates properties for a new dataset of kind as Create does (names, types, values), without a
    /// dataset: `zpool create -O` checks its root's before making the pool.
    /// </summary>
    public static StorageResult CheckCreateProperties(IReadOnlyDictionary<string, string> properties, DatasetKinds kind, string what)
        => ParseCreateProperties(properties, kind, what, new SortedDictionary<string, string>(StringComparer.Ordinal), out _);

    private static Def? Lookup(string name)
    {
        foreach (var def in s_props) if (def.Name == name) return def;
        return null;
    }

    private static DatasetKinds KindOf(DslDataset ds) =>
        ds.IsSnapshot ? DatasetKinds.Snapshot : ds.Dir.Type == DatasetType.Volume ? DatasetKinds.Volume : DatasetKinds.Filesystem;

    /// <summary>Where a value a zfs receive -R set is kept beside the local ones (its source is "received";
    /// a local value overrides it, and zfs inherit of the local one brings it back, as in ZFS).</summary>
    internal const string ReceivedPrefix = "%received/";

    /// <summary>dir's own value of a property: its local one, else the one a stream set.</summary>
    private static bool TryOwn(DslDir dir, string name, out string value, out bool received)
    {
        received = false;
        if (dir.Local.TryGetValue(name, out value!)) return true;
        received = s_receivedKeys.TryGetValue(name, out var key) && dir.Local.TryGetValue(key, out value!);
        if (!received) value = "";
        return received;
    }

    /// <summary>A property's value as it applies to dir: local, else received, else inherited from the nearest ancestor that sets it, else the default.</summary>
    internal string Effective(DslDir dir, string name, out PropertySource source, out DslDir? from)
    {
        from = null;
        if (TryOwn(dir, name, out var own, out bool received)) { source = received ? PropertySource.Received : PropertySource.Local; return own; }
        var def = Lookup(name)!;
        if (def.Inherit)
            for (var d = dir.Parent; d is not null; d = d.Parent)
                if (TryOwn(d, name, out var inherited, out _)) { source = PropertySource.Inherited; from = d; return inherited; }
        source = PropertySource.Default;
        return def.Default;
    }

    /// <summary>`zfs get`: one property of a dataset, with its source.</summary>
    public StorageResult Get(string name, string property, out DatasetProperty value)
    {
        value = default;
        if (Find(name, out var ds) != StorageStatus.Ok) return new StorageResult(StorageStatus.NoSuchDataset, Cannot("open", name));
        var def = Lookup(property);
        if (def is null) return new StorageResult(StorageStatus.BadProperty, "bad property list", $"invalid property '{property}'");
        value = GetValue(ds, def);
        return StorageResult.Success;
    }

    /// <summary>`zfs get all`: every property in table order ("-" for those that do not apply).</summary>
    public StorageResult GetAll(string name, out IReadOnlyList<DatasetProperty> values)
    {
        var list = new List<DatasetProperty>();
        values = list;
        if (Find(name, out var ds) != StorageStatus.Ok) return new StorageResult(StorageStatus.NoSuchDataset, Cannot("open", name));
        foreach (var def in s_props) list.Add(GetValue(ds, def));
        return StorageResult.Success;
    }

    private DatasetProperty GetValue(DslDataset ds, Def def)
    {
        if ((def.Applies & KindOf(ds)) == 0) return new DatasetProperty(def.Name, "-", null, PropertySource.None, "");
        var dir = ds.Dir;
        if (def.Kind == Kind.Info) return Info(ds, def.Name);
        if (def.Name == "volsize") return new DatasetProperty("volsize", Num(dir.VolSize), dir.VolSize, PropertySource.Local, "");
        string raw = Effective(dir, def.Name, out var source, out var from);
        string inheritedFrom = from?.FullName ?? "";
        if (def.Name == "mountpoint")
        {
            // An inherited mountpoint extends the ancestor's path by the rest of the name.
            string value = source switch
            {
                PropertySource.Local => raw,
                PropertySource.Inherited when raw is "none" or "legacy" => raw,
                PropertySource.Inherited => raw.TrimEnd('/') + dir.FullName[from!.FullName.Length..],
                _ => "/" + dir.FullName,
            };
            return new DatasetProperty(def.Name, value, null, source, inheritedFrom);
        }
        if (def.Kind == Kind.Size)
        {
            long n = raw == "none" ? 0 : long.Parse(raw, CultureInfo.InvariantCulture);
            bool noneIfZero = def.Name is "quota" or "refquota" or "reservation" or "refreservation";
            return new DatasetProperty(def.Name, n == 0 && noneIfZero ? "none" : Num(n), n, source, inheritedFrom);
        }
        return new DatasetProperty(def.Name, raw, null, source, inheritedFrom);
    }

    private static string Num(long n) => n.ToString(CultureInfo.InvariantCulture);

    private DatasetProperty Info(DslDataset ds, string name)
    {
        var dir = ds.Dir;
        long? n = name switch
        {
            "creation" => ds.Creation / 1_000_000_000,
            "used" => ds.IsSnapshot ? SnapshotUsed(ds) : dir.Used,
            "available" => Available(dir.Head, out _),
            "referenced" => ds.Referenced,
            "usedbysnapshots" => dir.SnapUsed,
            "usedbydataset" => dir.HeadUsed,
            "usedbychildren" => dir.ChildrenUsed,
            "usedbyrefreservation" => dir.RefReservationUsed,
            "written" => ds.IsSnapshot ? ds.Written : ds.Unique,
            "volblocksize" => dir.VolBlockSize,
            _ => null,
        };
        if (n is long v) return new DatasetProperty(name, Num(v), v, PropertySource.None, "");
        string text = name switch
        {
            "type" => ds.IsSnapshot ? "snapshot" : dir.Type == DatasetType.Volume ? "volume" : "filesystem",
            "compressratio" => Ratio(ds.IsSnapshot ? Referenced(ds) : Used(dir)),
            "refcompressratio" => Ratio(Referenced(ds)),
            "origin" => dir.Origin?.Name ?? "-",
            "receive_resume_token" => !ds.IsSnapshot && PartialReceive(dir) is { } partial ? partial.Token : "-",
            _ => "-",
        };
        return new DatasetProperty(name, text, null, PropertySource.None, "");
    }

    /// <summary>
    /// zfs's ratio, logical over physical bytes truncated to hundredths ("1.00x" when nothing is
    /// stored); "-" if the blocks could not be walked.
    /// </summary>
    private static string Ratio((long Logical, long Physical)? bytes) => bytes switch
    {
        null => "-",
        ({ } l, { } p) when p > 0 => string.Create(CultureInfo.InvariantCulture, $"{l * 100 / p / 100}.{l * 100 / p % 100:D2}x"),
        _ => "1.00x",
    };

    /// <summary>ZFS's BP_GET_UCSIZE: a data block's logical size; metadata counts as stored, so it never moves the ratio.</summary>
    private static long UncompressedSize(in BlockPointer bp) => bp.Type == BlockType.Data ? bp.LogicalSize : bp.PhysicalSize;

    /// <summary>Logical and physical bytes of every block ds references (refcompressratio's inputs).</summary>
    private (long, long)? Referenced(DslDataset ds)
    {
        long logical = 0, physical = 0;
        var walked = WalkDataset(ds, 0, bp => { logical += UncompressedSize(bp); physical += bp.PhysicalSize; return true; });
        return walked.IsOk ? (logical, physical) : null;
    }

    /// <summary>
    /// Logical and physical bytes of every block a dataset and its descendants hold, snapshots included
    /// (compressratio's inputs, as ZFS's dd_uncompressed_bytes and dd_compressed_bytes): each dataset
    /// of a lineage is walked for the blocks born after the one before it, so a shared block counts once.
    /// </summary>
    private (long, long)? Used(DslDir dir)
    {
        long logical = 0, physical = 0;
        var pending = new Stack<DslDir>();
        pending.Push(dir);
        while (pending.TryPop(out var d))
        {
            long prev = d.OriginTxg;
            foreach (var ds in Lineage(d))
            {
                var walked = WalkDataset(ds, prev, bp => { logical += UncompressedSize(bp); physical += bp.PhysicalSize; return true; });
                if (!walked.IsOk) return null;
                if (ds.IsSnapshot) prev = ds.Txg;
            }
            foreach (var child in d.Children) pending.Push(child);
        }
        return (logical, physical);
    }

    /// <summary>A snapshot's used (Dsl.cs rule 4): what destroying it alone would free.</summary>
    private long SnapshotUsed(DslDataset snap) => snap.Dir.Next(snap).Deadlist.SpaceBornAfter(_pool, snap.PrevTxg);

    /// <summary>`zfs set`: validates the value as zfs does, checks it against the space, stores it and commits.</summary>
    public StorageResult Set(string name, string property, string value) => Set(name, property, value, received: false);

    /// <summary>zfs set, or with received a value a replication stream carries (kept under <see cref="ReceivedPrefix"/>).</summary>
    private StorageResult Set(string name, string property, string value, bool received)
    {
        string what = $"cannot set property for '{name}'";
        if (Find(name, out var ds) != StorageStatus.Ok) return new StorageResult(StorageStatus.NoSuchDataset, Cannot("open", name));
        var def = Lookup(property);
        if (def is null) return new StorageResult(StorageStatus.BadProperty, what, $"invalid property '{property}'");
        if (!def.Settable) return new StorageResult(StorageStatus.BadProperty, what, $"'{property}' is readonly");
        if (ds.IsSnapshot) return new StorageResult(StorageStatus.BadProperty, what, "this property can not be modified for snapshots");
        if ((def.Applies & KindOf(ds)) == 0) return new StorageResult(StorageStatus.BadProperty, what, $"'{property}' does not apply to datasets of this type");
        var parsed = Parse(def, value, out string stored);
        if (!parsed.IsOk) return parsed with { Detail = what };
        var dir = ds.Dir;
        var fits = CheckSpace(dir, def.Name, stored);
        if (!fits.IsOk) return fits with { Detail = what };
        if (def.Name == "volsize")
        {
            long size = long.Parse(stored, CultureInfo.InvariantCulture);
            if (size % dir.VolBlockSize != 0) return new StorageResult(StorageStatus.BadProperty, what, "volume size must be a multiple of volume block size");
            // A volume that reserves its whole size keeps doing so (zvol_set_volsize).
            if (dir.RefReservation == dir.VolSize)
            {
                var grow = CheckSpace(dir, "refreservation", stored);
                if (!grow.IsOk) return grow with { Detail = what };
                SetLocal(dir, "refreservation", stored);
            }
        }
        SetLocal(dir, received ? ReceivedPrefix + def.Name : def.Name, stored);
        Touch(dir);
        return _pool.CommitTxg(force: true);
    }

    /// <summary>`zfs inherit`: drops the local value, so the inherited or default one applies.</summary>
    public StorageResult Inherit(string name, string property)
    {
        string what = $"cannot inherit {property} for '{name}'";
        if (Find(name, out var ds) != StorageStatus.Ok) return new StorageResult(StorageStatus.NoSuchDataset, Cannot("open", name));
        var def = Lookup(property);
        if (def is null) return new StorageResult(StorageStatus.BadProperty, what, $"invalid property '{property}'");
        if (!def.Settable) return new StorageResult(StorageStatus.BadProperty, what, $"'{property}' property is read-only");
        if (!def.Inherit) return new StorageResult(StorageStatus.BadProperty, what, $"'{property}' property cannot be inherited");
        if (ds.IsSnapshot) return new StorageResult(StorageStatus.BadProperty, what, "this property can not be modified for snapshots");
        if (!ds.Dir.Local.ContainsKey(property)) return StorageResult.Success;
        if (property == "compression" && !IsEnforcedCompression(InheritedValue(ds.Dir, property)))
            return new StorageResult(StorageStatus.BadProperty, what, $"compression '{InheritedValue(ds.Dir, property)}' is not supported yet");
        SetLocal(ds.Dir, property, null);
        Touch(ds.Dir);
        return _pool.CommitTxg(force: true);
    }

    private string InheritedValue(DslDir dir, string property)
    {
        for (var d = dir.Parent; d is not null; d = d.Parent)
            if (TryOwn(d, property, out var v, out _)) return v;
        return Lookup(property)!.Default;
    }

    private static void SetLocal(DslDir dir, string property, string? value)
    {
        long before = dir.Charged;
        if (value is null) dir.Local.Remove(property); else dir.Local[property] = value;
        RefreshProperties(dir);
        Propagate(dir, dir.Charged - before);
    }

    /// <summary>Re-reads the numeric properties the space checks use from the local values.</summary>
    private static void RefreshProperties(DslDir dir)
    {
        dir.Quota = LocalSize(dir, "quota");
        dir.RefQuota = LocalSize(dir, "refquota");
        dir.Reservation = LocalSize(dir, "reservation");
        dir.RefReservation = LocalSize(dir, "refreservation");
        dir.VolSize = LocalSize(dir, "volsize");
    }

    private static long LocalSize(DslDir dir, string name) =>
        TryOwn(dir, name, out var v, out _) && v != "none" ? long.Parse(v, CultureInfo.InvariantCulture) : 0;

    /// <summary>Validates a value in zfs's words (zfs_valid_proplist, zfs_nicestrtonum); stored is its canonical form.</summary>
    private static StorageResult Parse(Def def, string value, out string stored)
    {
        stored = value;
        switch (def.Kind)
        {
            case Kind.Choice:
                if (Array.IndexOf(def.Choices!, value) < 0)
                    return new StorageResult(StorageStatus.BadProperty, "", $"'{def.Name}' must be one of '{string.Join(" | ", def.Choices!)}'");
                if (def.Name == "compression" && !IsEnforcedCompression(value))
                    return new StorageResult(StorageStatus.BadProperty, "", $"compression '{value}' is not supported yet");
                return StorageResult.Success;
            case Kind.Path:
                if (value is "none" or "legacy") return StorageResult.Success;
                if (!value.StartsWith('/')) return new StorageResult(StorageStatus.BadProperty, "", $"'{def.Name}' must be an absolute path, 'none', or 'legacy'");
                stored = value.Length > 1 ? value.TrimEnd('/') : value;
                return StorageResult.Success;
            case Kind.Size:
                bool noneAllowed = def.Name is "quota" or "refquota" or "reservation" or "refreservation";
                if (noneAllowed && value == "none") { stored = "0"; return StorageResult.Success; }
                var parsed = ParseSize(value, out long n);
                if (!parsed.IsOk) return parsed;
                if (n == 0 && def.Name is "quota" or "refquota")
                    return new StorageResult(StorageStatus.BadProperty, "", "use 'none' to disable quota/refquota");
                if (def.Name == "volsize" && n == 0) return new StorageResult(StorageStatus.BadProperty, "", "volume size cannot be zero");
                if (def.Name == "recordsize" && (n < 512 || n > Pool.MaxBlockSize || (n & (n - 1)) != 0))
                    return new StorageResult(StorageStatus.BadProperty, "", $"'{def.Name}' must be power of 2 from 512B to {Pool.MaxBlockSize / 1024}KB");
                // Objects are trees of 128 KiB blocks (ObjectTree): a smaller record would not be enforced.
                if (def.Name == "recordsize" && n != Pool.MaxBlockSize)
                    return new StorageResult(StorageStatus.BadProperty, "", $"recordsize other than {Pool.MaxBlockSize / 1024}K is not supported yet");
                stored = Num(n);
                return StorageResult.Success;
            default:
                return new StorageResult(StorageStatus.BadProperty, "", $"'{def.Name}' is readonly");
        }
    }

    /// <summary>zfs_nicestrtonum: a number, optionally with a fraction and one of B K M G T P E (then an optional B).</summary>
    public static StorageResult ParseSize(string value, out long bytes)
    {
        bytes = 0;
        if (value.Length == 0 || (!char.IsAsciiDigit(value[0]) && value[0] != '.'))
            return new StorageResult(StorageStatus.BadProperty, "", $"bad numeric value '{value}'");
        int end = 0;
        while (end < value.Length && (char.IsAsciiDigit(value[end]) || value[end] == '.')) end++;
        string number = value[..end], suffix = value[end..];
        int shift = 0;
        if (suffix.Length > 0)
        {
            int index = "BKMGTPE".IndexOf(char.ToUpperInvariant(suffix[0]));
            bool ok = index >= 0 && (suffix.Length == 1 || (suffix.Length == 2 && index > 0 && char.ToUpperInvariant(suffix[1]) == 'B'));
            if (!ok) return new StorageResult(StorageStatus.BadProperty, "", $"invalid numeric suffix '{suffix}'");
            shift = 10 * index;
        }
        if (!decimal.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal d))
            return new StorageResult(StorageStatus.BadProperty, "", $"bad numeric value '{value}'");
        if (number.Contains('.') && shift == 0) return new StorageResult(StorageStatus.BadProperty, "", $"bad numeric value '{value}'");
        decimal result = d * (decimal)Math.Pow(2, shift);
        if (result > long.MaxValue) return new StorageResult(StorageStatus.BadProperty, "", "numeric value is too large");
        bytes = (long)result;
        return StorageResult.Success;
    }

    /// <summary>The space checks of dsl_dir_set_quota_check, dsl_dir_set_reservation_check and their ref- forms.</summary>
    private StorageResult CheckSpace(DslDir dir, string property, string stored)
    {
        if (property is not ("quota" or "refquota" or "reservation" or "refreservation")) return StorageResult.Success;
        long n = long.Parse(stored, CultureInfo.InvariantCulture);
        const string tooSmall = "size is less than current used or reserved space";
        const string tooBig = "size is greater than available space";
        switch (property)
        {
            case "quota":
                if (n != 0 && (n < dir.Used || n < dir.Reservation)) return new StorageResult(StorageStatus.PropertySpace, "", tooSmall);
                break;
            case "refquota":
                if (n != 0 && n < dir.Head.Referenced) return new StorageResult(StorageStatus.PropertySpace, "", tooSmall);
                break;
            case "reservation":
            {
                long delta = Math.Max(dir.Used, n) - Math.Max(dir.Used, dir.Reservation);
                long room = dir.Parent is null ? DirAvailable(dir, out _) : DirAvailable(dir.Parent, out _);
                if (delta > 0 && delta > room) return new StorageResult(StorageStatus.PropertySpace, "", tooBig);
                if (dir.Quota != 0 && n > dir.Quota) return new StorageResult(StorageStatus.PropertySpace, "", tooBig);
                break;
            }
            case "refreservation":
            {
                long unique = dir.Head.Unique;
                long delta = Math.Max(0, n - unique) - Math.Max(0, dir.RefReservation - unique);
                if (delta > 0 && delta > DirAvailable(dir, out _)) return new StorageResult(StorageStatus.PropertySpace, "", tooBig);
                break;
            }
        }
        return StorageResult.Success;
    }
}
