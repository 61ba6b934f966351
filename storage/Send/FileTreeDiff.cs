namespace SmartOS.Storage.Send;

/// <summary>zfs diff's change kinds: + added, - removed, M modified (contents or metadata), R renamed.</summary>
public enum FileChangeKind { Added, Removed, Modified, Renamed }

public sealed record FileChange(FileChangeKind Kind, string Path, string? NewPath = null)
{
    public override string ToString() => Kind switch
    {
        FileChangeKind.Added => $"+\t{Path}",
        FileChangeKind.Removed => $"-\t{Path}",
        FileChangeKind.Modified => $"M\t{Path}",
        _ => $"R\t{Path} -> {NewPath}",
    };
}

/// <summary>
/// The changes between two decoded snapshots of one file system, matched by object number as zfs
/// diff matches them (FileTreeImage rule 5), with its generation: a number freed and reused for a new
/// file is a removal and an addition, as zfs diff tells them apart by zp_gen. An object only in the
/// later tree was added, only in the earlier one removed, under another name renamed, and with other bytes, mode, owner, size, link
/// target or entries modified. Paths are those of each object's first name in walk order.
/// </summary>
public static class FileTreeDiff
{
    public static List<FileChange> Compare(FileTreeImage before, FileTreeImage after)
    {
        var old = FirstPaths(before);
        var now = FirstPaths(after);
        var changes = new List<FileChange>();
        foreach (var (id, (path, node)) in now)
        {
            if (!old.TryGetValue(id, out var was)) { changes.Add(new FileChange(FileChangeKind.Added, path)); continue; }
            if (was.Path != path) changes.Add(new FileChange(FileChangeKind.Renamed, was.Path, path));
            if (!Same(was.Node, node)) changes.Add(new FileChange(FileChangeKind.Modified, path));
        }
        foreach (var (id, (path, _)) in old)
            if (!now.ContainsKey(id)) changes.Add(new FileChange(FileChangeKind.Removed, path));
        changes.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return changes;
    }

    private static Dictionary<(ulong, ulong), (string Path, FileNode Node)> FirstPaths(FileTreeImage tree)
    {
        var map = new Dictionary<(ulong, ulong), (string, FileNode)>();
        foreach (var (path, node) in tree.Walk()) map.TryAdd((node.Id, node.Generation), (path, node));
        return map;
    }

    private static bool Same(FileNode a, FileNode b)
    {
        if (a.Kind != b.Kind || a.Mode != b.Mode || a.Uid != b.Uid || a.Gid != b.Gid || a.Size != b.Size
            || a.ModifyTime != b.ModifyTime || a.SymlinkTarget != b.SymlinkTarget) return false;
        if (a.Kind == FileKind.Directory)
        {
            if (a.Entries.Count != b.Entries.Count) return false;
            foreach (var (name, child) in a.Entries)
                if (!b.Entries.TryGetValue(name, out FileNode? other) || other.Id != child.Id) return false;
            return true;
        }
        return a.Kind != FileKind.RegularFile || a.ReadAll().AsSpan().SequenceEqual(b.ReadAll());
    }
}
