using SmartOS.Kernel;
using SmartOS.Storage;

namespace SmartOS.Cli.Commands;

/// <summary>
/// zfs send, receive and diff: streams of the dataset layer (storage/Dsl.Send.cs) on the command's
/// standard output and input, as bytes (Dispatcher.cs rule 5). A volume's stream (full, or -i
/// incremental on an earlier snapshot or its origin), which the dataset layer does not send, is sent
/// and received by storage/Send/ZvolStream.cs.
/// </summary>
/// <remarks>
/// Rules
///   1. send builds the whole stream (the dataset layer holds one in memory) and then writes it with
///      WriteAsync, so a slow reader (a daemon client, a pipe) holds the command, not the loop.
///   2. receive reads its whole standard input before it changes anything: in real time off the
///      loop (a pipe may be slow), in virtual time directly; then the dataset layer checks the whole
///      stream before the first change (nothing half-received). Streams over MaxStream are refused.
///   3. A mounted target is unmounted while the stream changes it and mounted again after; a received
///      filesystem is mounted (the host's mount table) unless -u or -n. receive logs in the pool's
///      history as the other changes do.
///   4. Options zfs has that these do not honour are refused by name, never ignored: send's -D, -L,
///      -e, -c, -p, -P, -n, -v; diff's -F, -H, -t. receive's "received N stream in S seconds"
///      line of -v is not printed: it measures the wall clock, which commands never read.
/// </remarks>
public static partial class Zfs
{
    /// <summary>The largest stream receive reads (it holds the stream in memory, as the dataset layer does).</summary>
    public const long MaxStream = 1L << 30;

    private static async Task<int> Send(CommandContext ctx, string[] argv)
    {
        var g = Getopt.Parse(argv[1..], ":i:I:RDLecpPnvt:");
        if (g.Error != null) return OptionError(ctx, argv, g);
        foreach (string flag in (string[])["D", "L", "e", "c", "p", "P", "n", "v"])
            if (g.Has(flag))
            {
                ctx.Err.WriteLine($"zfs send -{flag} is not supported here");
                return 1;
            }
        if (g.Value("t") is string token) return await SendResume(ctx, argv, g, token);
        if (g.Has("i") && g.Has("I")) return Usage(ctx, argv, "-i and -I are mutually exclusive");
        if (g.Operands.Count == 0) return Usage(ctx, argv, "missing snapshot argument");
        if (g.Operands.Count > 1) return Usage(ctx, argv, "too many arguments");
        string snapshot = g.Operands[0];
        if (!snapshot.Contains('@')) return Usage(ctx, argv, $"cannot send '{snapshot}': operation only applies to snapshots");
        var pool = Open(ctx, snapshot);
        if (pool == null) return 1;
        var options = new SendOptions { From = g.Value("i") ?? g.Value("I"), Intermediates = g.Has("I"), Replicate = g.Has("R") };
        using var stream = new MemoryStream();
        bool volume = TypeOf(pool, HeadOf(snapshot)) == "volume";
        if (volume && (options.Replicate || options.Intermediates))
        {
            ctx.Err.WriteLine($"cannot send '{snapshot}': -{(options.Replicate ? "R" : "I")} of a volume is not supported here");
            return 1;
        }
        var sent = volume
            ? SmartOS.Storage.Send.ZvolStream.Send(pool.Datasets, snapshot, options.From, stream)
            : pool.Datasets.Send(snapshot, options, stream);
        if (!sent.IsOk) return Refused(ctx, sent);
        await ctx.StdoutBytes.WriteAsync(stream.GetBuffer().AsMemory(0, (int)stream.Length), ctx.Cancel);
        return 0;
    }

    /// <summary>`zfs send -t token`: the rest of a stream a receive -s kept part of (storage/Dsl.SendResume.cs).</summary>
    private static async Task<int> SendResume(CommandContext ctx, string[] argv, Getopt g, string token)
    {
        if (g.Has("i") || g.Has("I") || g.Has("R")) return Usage(ctx, argv, "incremental source and -R cannot be used with -t");
        if (g.Operands.Count > 0) return Usage(ctx, argv, "no snapshot may be specified with -t");
        if (!SmartOS.Storage.Send.ResumeToken.TryDecode(token, out var contents, out string? corrupt))
        {
            ctx.Err.WriteLine($"cannot resume send: {corrupt}");
            return 1;
        }
        if (!contents.TryGet<string>("toname", out var toName))
        {
            ctx.Err.WriteLine("cannot resume send: resume token is corrupt");
            return 1;
        }
        var pool = PoolOf(ctx, toName);
        if (pool == null)
        {
            ctx.Err.WriteLine($"cannot resume send: '{toName}' used in the initial send no longer exists");
            return 1;
        }
        using var stream = new MemoryStream();
        var sent = pool.Datasets.SendResume(token, stream);
        if (!sent.IsOk) return Refused(ctx, sent);
        await ctx.StdoutBytes.WriteAsync(stream.GetBuffer().AsMemory(0, (int)stream.Length), ctx.Cancel);
        return 0;
    }

    private static async Task<int> Receive(CommandContext ctx, string[] argv)
    {
        var g = Getopt.Parse(argv[1..], ":vnFudesA");
        if (g.Error != null) return OptionError(ctx, argv, g);
        if (g.Has("A")) return AbortReceive(ctx, argv, g);
        if (g.Has("d") && g.Has("e")) return Usage(ctx, argv, "-d and -e are mutually exclusive");
        if (g.Operands.Count == 0) return Usage(ctx, argv, "missing snapshot argument");
        if (g.Operands.Count > 1) return Usage(ctx, argv, "too many arguments");
        string target = g.Operands[0];
        if (ctx.StdinBytes == null)
        {
            ctx.Err.WriteLine("Error: Backup stream can not be read from a terminal.\nYou must redirect standard input.");
            return 1;
        }
        var pool = PoolOf(ctx, target);
        if (pool == null)
        {
            ctx.Err.WriteLine($"cannot open '{target}': dataset does not exist");
            return 1;
        }
        if (Denied(ctx, target, "receive")) return 1;
        byte[]? data;
        try { data = ctx.World.Driver == null ? ReadAll(ctx.StdinBytes) : await Task.Run(() => ReadAll(ctx.StdinBytes)).WaitAsync(ctx.Cancel); }
        catch (OperationCanceledException) { return 1; }
        catch (IOException e)
        {
            ctx.Err.WriteLine($"cannot receive: failed to read from stream: {e.Message}");
            return 1;
        }
        if (data == null)
        {
            ctx.Err.WriteLine($"cannot receive: stream larger than {StorageText.Nicenum(MaxStream)} is not supported here");
            return 1;
        }
        if (SmartOS.Storage.Send.ZvolStream.IsVolumeStream(data))
        {
            string? refused = g.Has("F") || g.Has("d") || g.Has("e") || g.Has("n") || g.Has("s")
                ? "cannot receive: -F, -d, -e, -n and -s are not supported for volume streams here"
                : SmartOS.Storage.Send.ZvolStream.Receive(pool.Datasets, data, target);
            if (refused is null) return Log(ctx, pool, argv);
            ctx.Err.WriteLine(refused);
            return 1;
        }
        var options = new ReceiveOptions
        {
            Force = g.Has("F"), DiscardFirst = g.Has("d"), KeepLast = g.Has("e"), DryRun = g.Has("n"), Resumable = g.Has("s"),
        };
        // The changelist (Zfs.Mounts.cs rule 3): a mounted target is unmounted while the stream changes
        // its objects under it, and mounted again after.
        var unmounted = UnmountAffected(ctx, pool, AtOrBelow(HeadOf(target)));
        var received = pool.Datasets.Receive(new MemoryStream(data, writable: false), target, options, out var summary);
        MountAgain(ctx, pool, unmounted);
        if (!received.IsOk) return Refused(ctx, received);
        if (g.Has("v"))
            foreach (string line in summary!.Verbose) ctx.Out.WriteLine(line);
        foreach (string line in summary!.Warnings) ctx.Err.WriteLine(line);
        if (g.Has("n")) return 0;
        if (!g.Has("u"))
            foreach (string fs in summary.Filesystems)
                if (ctx.Host.Mounts.Find(fs) == null && pool.Datasets.Exists(fs) && MountsByDefault(pool, fs))
                {
                    var mounted = ctx.Host.Mounts.Mount(fs);
                    if (!mounted.IsOk) ctx.Err.WriteLine(mounted.Message);
                }
        return Log(ctx, pool, argv);
    }

    /// <summary>`zfs receive -A fs`: drops the state a receive -s kept.</summary>
    private static int AbortReceive(CommandContext ctx, string[] argv, Getopt g)
    {
        if (g.Operands.Count != 1) return Usage(ctx, argv, g.Operands.Count == 0 ? "missing filesystem argument" : "too many arguments");
        string fs = g.Operands[0];
        var pool = Open(ctx, fs);
        if (pool == null) return 1;
        if (Denied(ctx, fs, "receive")) return 1;
        var aborted = pool.Datasets.AbortReceive(fs);
        return aborted.IsOk ? Log(ctx, pool, argv) : Refused(ctx, aborted);
    }

    /// <summary>Whether zfs would mount a filesystem on its own: canmount=on and a mountpoint path.</summary>
    private static bool MountsByDefault(Pool pool, string fs)
        => TypeOf(pool, fs) == "filesystem"
           && pool.Datasets.Get(fs, "canmount", out var canmount).IsOk && canmount.Value == "on"
           && pool.Datasets.Get(fs, "mountpoint", out var mountpoint).IsOk && mountpoint.Value.StartsWith('/');

    /// <summary>All of a stream, or null past MaxStream.</summary>
    private static byte[]? ReadAll(Stream input) => CommandInput.ReadBytes(input, MaxStream);

    private static int Diff(CommandContext ctx, string[] argv)
    {
        var g = Getopt.Parse(argv[1..], ":FHt");
        if (g.Error != null) return OptionError(ctx, argv, g);
        foreach (string flag in (string[])["F", "H", "t"])
            if (g.Has(flag))
            {
                ctx.Err.WriteLine($"zfs diff -{flag} is not supported here");
                return 1;
            }
        if (g.Operands.Count == 0) return Usage(ctx, argv, "must provide at least one snapshot name");
        if (g.Operands.Count > 2) return Usage(ctx, argv, "too many arguments");
        string from = g.Operands[0];
        string? to = g.Operands.Count == 2 ? g.Operands[1] : null;
        if (!from.Contains('@')) return Usage(ctx, argv, "must provide at least one snapshot name");
        var pool = Open(ctx, from);
        if (pool == null) return 1;
        if (to != null && Open(ctx, to) == null) return 1;
        var diffed = pool.Datasets.Diff(from, to, out var lines);
        if (!diffed.IsOk) return Refused(ctx, diffed);
        foreach (string line in lines) ctx.Out.WriteLine(line);
        return 0;
    }
}
