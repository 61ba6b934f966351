using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Vnic;

namespace SmartOS.Netstack;

/// <summary>
/// What a network program running in a zone gets: its output streams, a cancellation token (^C,
/// zlogin exit), the zone's IP stack, and a way to open a datalink by name (ipadm create-if). Programs
/// are async and must be started on the host's loop (LoopSynchronizationContext) so their awaits
/// resume there.
/// </summary>
public sealed class ProgramContext
{
    public required TextWriter Out { get; init; }
    public required TextWriter Err { get; init; }
    /// <summary>Standard output as bytes, under <see cref="Out"/> (which must flush on every write,
    /// so the two keep their order): data programs (nc) write what they receive here, with
    /// WriteAsync, which waits while the reader is slow. Null where the caller captures text only;
    /// data is then written to Out as UTF-8.</summary>
    public Stream? StdoutBytes { get; init; }
    /// <summary>Standard input as bytes, when there is one (nc sends it); read with ReadAsync.</summary>
    public Stream? StdinBytes { get; init; }
    public required CancellationToken Cancel { get; init; }
    public required IpStack Stack { get; init; }
    /// <summary>Opens a MAC client on a datalink the zone may use; null when there is no such link
    /// (or it is busy or not the zone's).</summary>
    public Func<string, MacClient?>? OpenLink { get; init; }
    /// <summary>Where relative paths (httpd -d, curl -o) resolve: the scenario's directory in `smartos run`.</summary>
    public string WorkingDirectory { get; init; } = Environment.CurrentDirectory;
    /// <summary>The zone's persistent ipadm configuration; null where there is none (replay, tests).</summary>
    public IIpadmStore? Persistent { get; init; }
    /// <summary>The files of the zone the program runs in, its paths resolved in the zone's root
    /// (zones/ZoneFiles.cs); null in the global zone and in a zone without a dataset, where programs
    /// use the machine's files (WorkingDirectory) as before.</summary>
    public IProgramFiles? Files { get; init; }
}

/// <summary>What reading a file of a zone's tree found.</summary>
public enum ProgramFileStatus { Ok, NotFound, IsDirectory, NotDirectory, TooLarge, IoError }

/// <summary>
/// The file seam of the netstack's programs: the files of the zone they run in, by absolute path of
/// the zone's tree. The zones layer implements it over the zone's root (zones/ZoneFiles.cs), so a
/// program reads what the zone's file commands write, and nothing outside the zone's root.
/// </summary>
public interface IProgramFiles
{
    /// <summary>Whether path is a directory (after symbolic links): Ok, IsDirectory, or why not found.</summary>
    ProgramFileStatus Probe(string path);

    /// <summary>A regular file's bytes, at most maxBytes (TooLarge beyond).</summary>
    ProgramFileStatus ReadAll(string path, int maxBytes, out byte[] contents);
}

/// <summary>
/// ipadm's persistent configuration of one zone (illumos keeps it in ipadm.conf and ipmgmtd replays
/// it at boot): each record is the argument list of an ipadm command that succeeded without -t, in
/// the order they were made.
/// </summary>
public interface IIpadmStore
{
    List<string[]> Load();
    void Save(List<string[]> records);
}

/// <summary>
/// What a netstack program says about itself, once, beside its RunAsync: the command registry of
/// the CLI (tools/CommandRegistry.cs) lists it with the CLI's own commands, so usage messages, the
/// front ends and the dispatcher read one description. Every program acts on a live IP stack, so
/// each needs a running host and may run in any zone (on that zone's stack).
/// </summary>
/// <param name="Name">The command name.</param>
/// <param name="Options">The program's options as a getopt string: the one its parser reads.</param>
/// <param name="Summary">One line of help, as the NAME line of the program's manual page.</param>
/// <param name="RunAsync">The program.</param>
public sealed record ProgramDescriptor(string Name, string Options, string Summary, Func<ProgramContext, string[], Task<int>> RunAsync)
{
    /// <summary>Whether the program may read its standard input (nc sends it).</summary>
    public bool ReadsStdin { get; init; }

    /// <summary>The program's long options, as Getopt reads them ("port:=p": --port is -p); empty
    /// for a program that has none.</summary>
    public string[] LongOptions { get; init; } = [];
}

/// <summary>The programs of the netstack, by name (the CLI's command registry adds them to its own).</summary>
public static class Programs
{
    /// <summary>Every program's descriptor, in name order.</summary>
    public static readonly IReadOnlyList<ProgramDescriptor> All =
    [
        Arp.Descriptor, Curl.Descriptor, Dhcpd.Descriptor, Httpd.Descriptor, Ifconfig.Descriptor, Ipadm.Descriptor,
        Iperf.Descriptor, Nc.Descriptor, Netstat.Descriptor, Ping.Descriptor, Route.Descriptor, Traceroute.Descriptor,
    ];

    private static readonly Dictionary<string, ProgramDescriptor> s_byName = All.ToDictionary(d => d.Name, StringComparer.Ordinal);

    public static IEnumerable<string> Names => s_byName.Keys;

    public static bool TryGet(string name, out Func<ProgramContext, string[], Task<int>> run)
    {
        if (s_byName.TryGetValue(name, out var d)) { run = d.RunAsync; return true; }
        run = null!;
        return false;
    }

    internal static bool TryParseCidr(string text, out IpAddress address, out int prefix)
    {
        prefix = -1;
        int slash = text.IndexOf('/');
        string a = slash < 0 ? text : text[..slash];
        if (!IpAddress.TryParse(a, out address)) return false;
        if (slash < 0) { prefix = address.IsV4 ? 32 : 128; return true; }
        return int.TryParse(text[(slash + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out prefix)
            && prefix <= (address.IsV4 ? 32 : 128);
    }

    internal static string Mask(int prefix)
    {
        uint m = prefix <= 0 ? 0 : 0xFFFFFFFFu << (32 - prefix);
        return IpAddress.V4(m).ToString();
    }

    internal static string Ms(long ns) => (ns / 1e6).ToString("F3", System.Globalization.CultureInfo.InvariantCulture);
}
