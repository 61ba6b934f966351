namespace SmartOS.Storage;

/// <summary>
/// ZFS's dataset name rules (zfs_namecheck): components of letters, digits and "-_.: " joined by '/',
/// the first naming the pool, at most one '@' before a snapshot's name, fewer than 256 bytes in all.
/// Check returns the reason libzfs prints for a bad name, or null.
/// </summary>
public static class DatasetName
{
    public const int MaxLength = 255;   // ZFS_MAX_DATASET_NAME_LEN less its NUL

    public static string? Check(string name, bool snapshot)
    {
        if (name.Length > MaxLength) return "name is too long";
        if (name.Length == 0) return "empty component in name";
        if (name[0] == '/') return "leading slash in name";
        int at = name.IndexOf('@');
        if (at >= 0 && name.IndexOf('@', at + 1) >= 0) return "multiple '@' and/or '#' delimiters in name";
        if (at >= 0 && !snapshot) return "snapshot delimiter '@' is not expected here";
        if (at < 0 && snapshot) return "missing '@' delimiter in snapshot name";
        string path = at >= 0 ? name[..at] : name;
        if (path.EndsWith('/')) return "trailing slash in name";
        foreach (var component in path.Split('/'))
        {
            string? bad = CheckComponent(component);
            if (bad is not null) return bad;
        }
        if (at >= 0)
        {
            string snap = name[(at + 1)..];
            if (snap.Length == 0) return "empty component in name";
            if (snap.Contains('/')) return "trailing slash in name";
            return CheckComponent(snap);
        }
        if (!char.IsAsciiLetter(name[0])) return "pool doesn't begin with a letter";
        return null;
    }

    private static string? CheckComponent(string component)
    {
        if (component.Length == 0) return "empty component in name";
        foreach (char c in component)
            if (!IsValidChar(c)) return $"invalid character '{c}' in name";
        if (component == ".") return "self reference, '.' is found in name";
        if (component == "..") return "parent reference, '..' is found in name";
        return null;
    }

    private static bool IsValidChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':' or ' ';
}
