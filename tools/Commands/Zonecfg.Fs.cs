using System.Text;
using SmartOS.Zones;
using SmartOS.Kernel;

namespace SmartOS.Cli.Commands;

/// <summary>
/// zonecfg's fs resource (zonecfg(8) "fs"): a file system mounted into the zone when it readies. Only
/// type lofs is made here (the global path special, seen at dir in the zone, zones/FileView.cs), with
/// options ro or rw; the other types and options are refused, since they would not be mounted or
/// enforced. The checks and words at end are illumos's end_func: dir, special and type are required,
/// dir must be absolute, and no two fs resources share a dir.
/// </summary>
public static partial class Zonecfg
{
    /// <summary>The fs types zonecfg knows; lofs is the one this host mounts.</summary>
    private static readonly string[] s_fsTypes = ["lofs", "zfs", "ufs", "tmpfs", "hsfs", "pcfs", "nfs"];

    private static void SetFs(ZoneFs fs, string prop, string value)
    {
        switch (prop)
        {
            case "dir": fs.Dir = value; break;
            // zonecfg takes special as given; zoneadm checks it when the zone readies (ZoneTable.CheckFs).
            case "special": fs.Special = value; break;
            case "type":
                if (value != "lofs" && Array.IndexOf(s_fsTypes, value) >= 0)
                    throw new ZonecfgError($"type: '{ConfigText.Echo(value)}' is not supported yet: only lofs mounts are made");
                if (value != "lofs") throw new ZonecfgError($"type: '{ConfigText.Echo(value)}' is not a known file system type");
                fs.Type = value;
                break;
            case "options":
                fs.Options = ParseOptions(value);
                break;
            case "raw":
                throw new ZonecfgError("raw: not supported: a lofs mount has no raw device");
            default:
                throw new ZonecfgError($"{prop}: unknown property for fs");
        }
    }

    /// <summary>`add options ro` or `add options [ro]` inside the fs scope: appends to the list.</summary>
    private static void AddOptions(ZoneFs fs, string[] w)
    {
        if (w.Length != 3) throw new ZonecfgError("add: usage: add options <option> | [<option>,...]");
        var next = new List<string>(fs.Options);
        foreach (string option in ParseOptions(w[2]))
            if (!next.Contains(option)) next.Add(option);
        CheckOptions(next);
        fs.Options = next;
    }

    /// <summary>An option list as typed: "ro", "[ro]" or "[ro,rw]"; only ro and rw are enforced.</summary>
    private static List<string> ParseOptions(string text)
    {
        string inner = text.StartsWith('[') && text.EndsWith(']') ? text[1..^1] : text;
        var list = new List<string>();
        foreach (string option in inner.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (option is not ("ro" or "rw")) throw new ZonecfgError($"options: '{ConfigText.Echo(option)}' is not supported yet: only ro and rw are enforced");
            if (!list.Contains(option)) list.Add(option);
        }
        CheckOptions(list);
        return list;
    }

    private static void CheckOptions(List<string> options)
    {
        if (options.Contains("ro") && options.Contains("rw")) throw new ZonecfgError("options: ro and rw are mutually exclusive");
    }

    /// <summary>end of an fs scope: illumos's end_func checks, then the resource is added.</summary>
    private static void EndFs(ZoneConfig cfg, ZoneFs fs)
    {
        var problems = new List<string>();
        if (fs.Dir.Length == 0) problems.Add("dir not specified");
        else if (!fs.Dir.StartsWith('/')) problems.Add($"dir {ConfigText.Echo(fs.Dir)} is not an absolute path.");
        if (fs.Special.Length == 0) problems.Add("special not specified");
        else if (!fs.Special.StartsWith('/')) problems.Add($"special {ConfigText.Echo(fs.Special)} is not an absolute path.");
        if (fs.Type.Length == 0) problems.Add("type not specified");
        // end_func reports every missing property; the run stops at the first, as every error here does.
        if (problems.Count > 0) throw new ZonecfgError(problems[0]);
        foreach (var other in cfg.Fs)
            if (MountTable.Clean(other.Dir) == MountTable.Clean(fs.Dir))
                throw new ZonecfgError($"A fs resource with the dir '{ConfigText.Echo(fs.Dir)}' already exists.");
        cfg.Fs.Add(fs);
    }

    /// <summary>remove [-F] fs [dir=DIR]: one by its dir, or every one (-F when there are several).</summary>
    private static void RemoveFs(ZoneConfig cfg, string[] w, int from, bool force)
    {
        string? dir = null;
        for (int i = from; i < w.Length; i++)
        {
            if (!w[i].StartsWith("dir=", StringComparison.Ordinal)) throw new ZonecfgError($"remove fs: '{ConfigText.Echo(w[i])}' is not an fs property (use dir=...)");
            dir = w[i][4..].Trim('"');
        }
        if (dir == null)
        {
            if (cfg.Fs.Count > 1 && !force) throw new ZonecfgError("fs: more than one resource of this type; use dir=... or -F to remove all");
            if (cfg.Fs.Count == 0) throw new ZonecfgError("fs: no such resource");
            cfg.Fs.Clear();
        }
        else if (cfg.Fs.RemoveAll(f => f.Dir == dir) == 0) throw new ZonecfgError($"fs: no resource with dir={dir}");
    }

    /// <summary>info's fs lines, as zonecfg prints them (raw is never set here).</summary>
    private static void InfoFs(StringBuilder sb, ZoneConfig c)
    {
        foreach (var fs in c.Fs)
        {
            sb.Append("fs:\n\tdir: ").Append(fs.Dir).Append("\n\tspecial: ").Append(fs.Special).Append("\n\traw not specified\n");
            sb.Append("\ttype: ").Append(fs.Type).Append("\n\toptions: [").Append(string.Join(',', fs.Options)).Append("]\n");
        }
    }

    /// <summary>export's fs commands.</summary>
    private static void ExportFs(StringBuilder sb, ZoneConfig c)
    {
        foreach (var fs in c.Fs)
        {
            sb.Append("add fs\nset dir=").Append(fs.Dir).Append("\nset special=").Append(fs.Special).Append("\nset type=").Append(fs.Type).Append('\n');
            if (fs.Options.Count > 0) sb.Append("add options [").Append(string.Join(',', fs.Options)).Append("]\n");
            sb.Append("end\n");
        }
    }
}
