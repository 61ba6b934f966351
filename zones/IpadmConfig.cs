using SmartOS.Kernel;
using SmartOS.Netstack;
using SmartOS.Vnic;

namespace SmartOS.Zones;

/// <summary>
/// A zone's persistent ipadm configuration in the host's configuration store (illumos: the zone's
/// /etc/ipadm/ipadm.conf): ipadm.conf for the global zone, ipadm.ZONE.conf for another, one record
/// per line as the ipadm arguments separated by spaces. Written atomically by the store; replayed
/// when the host boots (global) or the zone boots (Ipadm.Replay), removed with the zone.
/// </summary>
public sealed class IpadmConfig(IConfigStore store, string zone) : IIpadmStore
{
    public static string FileName(string zone) => zone == "global" ? "ipadm.conf" : $"ipadm.{zone}.conf";

    /// <summary>The file's records. A file that cannot be read (a directory, no permission) throws
    /// IOException, so ipadm says so; and as ipadm loads before it saves, nothing rewrites such a
    /// file (ConfigFile.cs rule 3).</summary>
    public List<string[]> Load()
        => TryLoad(out string? unreadable)?.ConvertAll(r => r.Args) ?? throw ConfigText.Refusal(FileName(zone), unreadable!);

    /// <summary>The records with the line each is on (comments and blank lines skipped), or null
    /// with the reason when the file cannot be read.</summary>
    private List<(int Line, string[] Args)>? TryLoad(out string? unreadable)
    {
        var records = new List<(int, string[])>();
        string? text = ConfigText.Read(store, FileName(zone), out unreadable);
        if (unreadable != null) return null;
        if (text == null) return records;
        string[] lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string l = lines[i].Trim();
            if (l.Length == 0 || l.StartsWith('#')) continue;
            records.Add((i + 1, l.Split(' ', StringSplitOptions.RemoveEmptyEntries)));
        }
        return records;
    }

    public void Save(List<string[]> records)
    {
        if (records.Count == 0)
        {
            store.Delete(FileName(zone));
            return;
        }
        store.Write(FileName(zone), string.Concat(records.Select(r => string.Join(' ', r) + "\n")));
    }

    /// <summary>Replays the zone's records on its IP stack, opening only datalinks the zone holds;
    /// returns what failed, one line each, named by file and line.</summary>
    /// <remarks>Runs with the world's loop as the synchronization context, so that what a command
    /// still awaits (duplicate address detection, a DHCP lease) resumes on the loop.</remarks>
    public static List<string> Replay(Host host, string zone, IpStack stack)
    {
        var records = new IpadmConfig(host.Store, zone).TryLoad(out string? unreadable);
        if (records == null) return [$"{FileName(zone)}: {unreadable}"];
        if (records.Count == 0) return [];
        var mac = host.Mac;
        var ctx = new ProgramContext
        {
            Out = TextWriter.Null, Err = TextWriter.Null, Cancel = CancellationToken.None, Stack = stack,
            OpenLink = name => mac.Find(name) is PortLink port && port.Zone == zone ? port.OpenClient("ip:" + zone) : null,
        };
        var previous = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(host.Sync);
        try
        {
            // One record at a time, so that each problem names the line it came from.
            var problems = new List<string>();
            foreach (var (line, args) in records)
                foreach (string p in Ipadm.Replay(ctx, [args])) problems.Add($"{FileName(zone)}: line {line}: {p}");
            return problems;
        }
        finally { SynchronizationContext.SetSynchronizationContext(previous); }
    }
}
