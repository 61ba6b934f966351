using System.Text;
using SmartOS.Kernel;
using SmartOS.Storage;

namespace SmartOS.Cli.Commands;

/// <summary>
/// zfs(8): the datasets of the host's pools (storage/Dsl.cs over zones/PoolTable.cs), with the
/// options, output, wording and exit statuses of illumos's usr/src/cmd/zfs/zfs_main.c and libzfs.
/// </summary>
/// <remarks>
/// Rules
///   1. Subcommands are a table (s_subcommands): name, usage lines, handler. A handler gets the
///      command line from the subcommand on (argv[0] is the name as typed, "snap" or "snapshot").
///      Bad usage prints the subcommand's usage and exits 2; a refused operation prints libzfs's
///      "cannot VERB 'NAME': REASON" and exits 1; an unknown subcommand gets the whole usage.
///   2. Every subcommand checks its options and operands before it changes anything; the dataset
///      layer checks the rest and changes nothing when it refuses (Dsl.cs rule 7). Where one command
///      line makes several changes (`create -p`, `clone -p`, snapshots of several datasets) the
///      checks of all of them come first, and ancestors made for a change that then fails are
///      destroyed again. `set` checks every property=value before it sets the first; only a space
///      check (a quota below what is used, a reservation beyond what is free) can stop it later.
///   3. Each change is committed by the dataset layer (Dsl.cs rule 6), then logged in its pool's
///      history as the command line (`zpool history` shows "zfs create tank/a") and committed again,
///      before the command reports success, as zpool logs (Zpool.cs rule 3).
///   4. A non-global zone sees only the datasets delegated to it (zonecfg add dataset, vmadm
///      delegate_dataset), what is below them and, read-only, their ancestors (zones/ZoneDatasets.cs,
///      Zfs.Zones.cs); anything else "does not exist", and `zfs list` in a zone with nothing
///      delegated prints "no datasets available". A change outside the delegated trees is
///      "permission denied".
///   5. -f of destroy, rollback and rename forces an unmount in illumos; nothing here is mounted by
///      this command, so it changes nothing, and a dataset held open (Dsl.Hold) is still "busy".
/// </remarks>
public static partial class Zfs
{
    public static readonly CommandDescriptor Descriptor = new("zfs", "configures ZFS file systems", RunAsync) { ReadsStdin = true };

    /// <summary>A subcommand's handler: argv is the command line from the subcommand's name on.</summary>
    public delegate Task<int> Handler(CommandContext ctx, string[] argv);

    /// <summary>A subcommand: its names (the first is the one usage prints), usage lines, and handler.</summary>
    private sealed record Subcommand(string[] Names, string Usage, Handler Run, bool ListsProperties = false);

    private static Handler Sync(Func<CommandContext, string[], int> run) => (ctx, argv) => Task.FromResult(run(ctx, argv));

    /// <summary>
    /// zfs's command table, in its order; null starts a new group in the full usage. mount and unmount
    /// are Zfs.Mounts.cs's, send, receive and diff Zfs.Streams.cs's.
    /// </summary>
    private static readonly Subcommand?[] s_subcommands =
    [
        new(["create"], "\tcreate [-p] [-o property=value] ... <filesystem>\n\tcreate [-ps] [-b blocksize] [-o property=value] ... -V <size> <volume>\n", Sync(Create)),
        new(["destroy"], "\tdestroy [-fnpRrv] <filesystem|volume>\n\tdestroy [-npRrv] <filesystem|volume>@<snap>\n", Sync(Destroy)),
        null,
        new(["snapshot", "snap"], "\tsnapshot [-r] [-o property=value] ... <filesystem|volume>@<snap> ...\n", Sync(Snapshot)),
        new(["rollback"], "\trollback [-rRf] <snapshot>\n", Sync(Rollback)),
        new(["clone"], "\tclone [-p] [-o property=value] ... <snapshot> <filesystem|volume>\n", Sync(Clone)),
        new(["promote"], "\tpromote <clone-filesystem>\n", Sync(Promote)),
        new(["rename"], "\trename [-f] <filesystem|volume|snapshot> <filesystem|volume|snapshot>\n\trename [-f] -p <filesystem|volume> <filesystem|volume>\n\trename -r <snapshot> <snapshot>\n", Sync(Rename)),
        null,
        new(["list"], "\tlist [-Hp] [-r|-d max] [-o property[,...]] [-s property]...\n\t    [-S property]... [-t type[,...]] [filesystem|volume|snapshot] ...\n", Sync(List), ListsProperties: true),
        null,
        new(["set"], "\tset <property=value> ... <filesystem|volume|snapshot> ...\n", Sync(Set), ListsProperties: true),
        new(["get"], "\tget [-rHp] [-d max] [-o \"all\" | field[,...]]\n\t    [-t type[,...]] [-s source[,...]]\n\t    <\"all\" | property[,...]> [filesystem|volume|snapshot] ...\n", Sync(Get), ListsProperties: true),
        new(["inherit"], "\tinherit [-r] <property> <filesystem|volume|snapshot> ...\n", Sync(Inherit), ListsProperties: true),
        null,
        new(["mount"], "\tmount\n\tmount [-v] <-a | filesystem>\n", Sync(MountCommand)),
        new(["unmount", "umount"], "\tunmount [-f] <-a | filesystem|mountpoint>\n", Sync(UnmountCommand)),
        null,
        new(["send"], "\tsend [-R] [-[iI] snapshot] <snapshot>\n\tsend -t <receive_resume_token>\n", Send),
        new(["receive", "recv"], "\treceive [-vnsFu] <filesystem|volume|snapshot>\n\treceive [-vnsFu] [-d | -e] <filesystem>\n\treceive -A <filesystem|volume>\n", Receive),
        null,
        new(["diff"], "\tdiff <snapshot> [snapshot|filesystem]\n", Sync(Diff)),
    ];

    public static Task<int> RunAsync(CommandContext ctx, string[] args)
    {
        if (args.Length == 0) return Task.FromResult(FullUsage(ctx, "missing command"));
        foreach (var sub in s_subcommands)
            if (sub is not null && Array.IndexOf(sub.Names, args[0]) >= 0) return sub.Run(ctx, args);
        return Task.FromResult(FullUsage(ctx, $"unrecognized command '{args[0]}'"));
    }

    // ---- usage (rule 1) ----

    private static int FullUsage(CommandContext ctx, string why)
    {
        var sb = new StringBuilder();
        sb.Append(why).Append('\n');
        sb.Append("usage: zfs command args ...\nwhere 'command' is one of the following:\n\n");
        foreach (var sub in s_subcommands) sb.Append(sub is null ? "\n" : sub.Usage);
        sb.Append("\nEach dataset is of the form: pool/[dataset/]*dataset[@name]\n");
        AppendPropertyHint(sb);
        ctx.Err.Write(sb.ToString());
        return 2;
    }

    /// <summary>usage(B_FALSE) for one subcommand: its lines, then the property table or where to find it; exit 2.</summary>
    private static int Usage(CommandContext ctx, string[] argv, string? why = null)
    {
        var sb = new StringBuilder();
        if (why is not null) sb.Append(why).Append('\n');
        Subcommand? sub = null;
        foreach (var s in s_subcommands)
            if (s is not null && Array.IndexOf(s.Names, argv[0]) >= 0) sub = s;
        sb.Append("usage:\n").Append(sub!.Usage);
        if (sub.ListsProperties) AppendPropertyTable(sb);
        else AppendPropertyHint(sb);
        ctx.Err.Write(sb.ToString());
        return 2;
    }

    private static void AppendPropertyHint(StringBuilder sb)
        => sb.Append("\nFor the property list, run: zfs set|get\n\nFor the delegated permission list, run: zfs allow|unallow\n");

    /// <summary>usage_prop_cb's table: every property, whether set may change it, whether it inherits, its values.</summary>
    private static void AppendPropertyTable(StringBuilder sb)
    {
        sb.Append("\nThe following properties are supported:\n\n");
        sb.Append($"\t{"PROPERTY",-21}  EDIT  INHERIT   VALUES\n\n");
        var names = DatasetTree.PropertyNames.OrderBy(n => n, StringComparer.Ordinal);
        foreach (string name in names)
        {
            var info = DatasetTree.Describe(name)!;
            string values = !info.Settable ? "-"
                : info.Choices is { } choices ? string.Join(" | ", choices)
                : info.IsSize ? (name is "quota" or "refquota" or "reservation" or "refreservation" ? "<size> | none" : "<size>")
                : "<path> | legacy | none";
            sb.Append($"\t{name,-21}  ").Append(info.Settable ? "YES    " : " NO    ").Append(info.Inheritable ? "  YES   " : "   NO   ").Append(values).Append('\n');
        }
        sb.Append("\nSizes are specified in bytes with standard units such as K, M, G, etc.\n");
    }

    /// <summary>getopt's complaint as zfs words it, then the subcommand's usage.</summary>
    private static int OptionError(CommandContext ctx, string[] argv, Getopt g)
        => Usage(ctx, argv, g.ErrorMissingValue ? $"missing argument for '{g.ErrorOption}' option" : $"invalid option '{g.ErrorOption}'");

    // ---- lookups (rule 4) ----

    /// <summary>The pool a dataset name is in, if the caller's zone can see it (rule 4).</summary>
    private static Pool? PoolOf(CommandContext ctx, string name)
    {
        if (!Sees(ctx, name)) return null;
        int end = name.IndexOfAny(['/', '@']);
        return ctx.Host.Pools.Find(end < 0 ? name : name[..end]);
    }

    /// <summary>zfs_open: the pool of an existing dataset, or null after "cannot open 'NAME': REASON".</summary>
    private static Pool? Open(CommandContext ctx, string name)
    {
        string? bad = DatasetName.Check(name, snapshot: name.Contains('@'));
        if (bad is not null)
        {
            ctx.Err.WriteLine($"cannot open '{name}': {bad}");
            return null;
        }
        var pool = PoolOf(ctx, name);
        if (pool is null || !pool.Datasets.Exists(name))
        {
            ctx.Err.WriteLine($"cannot open '{name}': dataset does not exist");
            return null;
        }
        return pool;
    }

    /// <summary>A dataset's type as `zfs get type` names it.</summary>
    private static string TypeOf(Pool pool, string name)
        => pool.Datasets.Get(name, "type", out var type).IsOk ? type.Value : "";

    /// <summary>Prints a refusal from the dataset layer (its message is libzfs's wording); exit 1.</summary>
    private static int Refused(CommandContext ctx, StorageResult result)
    {
        ctx.Err.WriteLine(result.Message);
        return 1;
    }

    /// <summary>Logs the command line in the pool's history and commits (rule 3).</summary>
    private static int Log(CommandContext ctx, Pool pool, string[] argv)
    {
        var logged = pool.AppendHistory(ctx.Host.Scheduler.Now, false, "zfs " + string.Join(' ', argv));
        if (logged.IsOk) logged = pool.Commit();
        return logged.IsOk ? 0 : Refused(ctx, logged);
    }

    /// <summary>Parses repeated -o property=value into a map; false (after zfs's complaint) for a bad one.</summary>
    private static bool ParseProps(CommandContext ctx, IReadOnlyList<string> specs, Dictionary<string, string> props, string option = "property=value argument")
    {
        foreach (string spec in specs)
        {
            int eq = spec.IndexOf('=');
            if (eq < 0)
            {
                ctx.Err.WriteLine($"missing '=' for {option}");
                return false;
            }
            string prop = spec[..eq];
            if (!props.TryAdd(prop, spec[(eq + 1)..]))
            {
                ctx.Err.WriteLine($"property '{prop}' specified multiple times");
                return false;
            }
        }
        return true;
    }
}
