namespace SmartOS.Vnic;

/// <summary>
/// illumos datalink naming (dladm(8), "Link names"): a letter first, then letters, digits,
/// underscores or periods... ending in a digit (the PPA), at most 31 characters (MAXLINKNAMELEN-1).
/// </summary>
public static class LinkNames
{
    public const int MaxLength = 31;

    public static bool IsValid(string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > MaxLength) return false;
        if (!char.IsAsciiLetter(name[0]) || !char.IsAsciiDigit(name[^1])) return false;
        foreach (char c in name)
            if (!char.IsAsciiLetterOrDigit(c) && c != '_' && c != '.') return false;
        // The PPA may not have leading zeros ("vnic01" is invalid, "vnic0" and "vnic10" are fine).
        int i = name.Length - 1;
        while (i > 0 && char.IsAsciiDigit(name[i - 1])) i--;
        if (name.Length - i > 1 && name[i] == '0') return false;
        return true;
    }
}
