using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SmartOS.Kernel;
using SmartOS.Zones;
using SmartOS.Zones.Images;

namespace SmartOS.Cli.Commands;

/// <summary>
/// imgadm(8): install, import, list, get, show, delete, sources, create and vacuum of images, on the
/// host's image store (zones/Images/ImageStore.cs, whose theory statement says what an image is
/// here). Wording, output and exit codes follow smartos-live's src/img: errors print as cmdln prints
/// them with showCode, "imgadm SUBCMD: error (Code): message", and exit 1; list is tabula's table
/// (columns upper-cased, two spaces apart, "-" for a missing value) sorted by published_at then
/// name; get, show and list -j print JSON as JSON.stringify(x, null, 2).
/// </summary>
/// <remarks>
/// Options imgadm has that need what is not here are refused by name, never ignored: sources -e
/// (an editor), -k (TLS), -t docker|dsapi; create -s (a prepare-image script run in the guest), -p
/// (publishing to a server), -i of a bhyve/kvm VM (ImageStore "Not done"); list
/// --docker; -P with a pool other than zones; the subcommands avail, update, ancestry and publish
/// (they talk to image servers).
/// </remarks>
public static class Imgadm
{
    public static readonly CommandDescriptor Descriptor = new("imgadm", "manage SmartOS virtual machine images", RunAsync)
    {
        ReadsStdin = true,
        ZoneRefusal = "imgadm: error: cannot run: must be run in the global zone",
    };

    private const string HelpText = """
        Manage SmartOS virtual machine images.

        Usage:
            imgadm [<options>] <command> [<args>...]
            imgadm help <command>

        Commands:
            help (?)            Help on a specific sub-command.
            sources             List and edit image sources.
            list                List locally installed images.
            get (info)          Get information for an installed image.
            show                Show the manifest for an available image.
            import              Import an image from a source IMGAPI.
            install             Install an image from local manifest and image files.
            delete (destroy)    Delete an image from the local zpool.
            vacuum              Remove unused images -- i.e. not used for any VMs or child images.
            create              Create an image from the given VM and manifest data.

        Image sources are local directories here: DIR/images/UUID/{manifest,file}, or
        NAME-VERSION.imgmanifest and NAME-VERSION.zfs[.gz|.bz2|.xz] pairs.
        """;

    private const string DefaultColumns = "uuid,name,version,os,type,pub";

    public static async Task<int> RunAsync(CommandContext ctx, string[] args)
    {
        if (args.Length == 0)
        {
            ctx.Err.WriteLine(HelpText);
            return 1;
        }
        string[] rest = args[1..];
        try
        {
            return args[0] switch
            {
                "help" or "?" or "-h" or "--help" => Help(ctx),
                "sources" => Sources(ctx, rest),
                "list" => List(ctx, rest),
                "get" or "info" => Get(ctx, args[0], rest),
                "show" => Show(ctx, rest),
                "delete" or "destroy" => Delete(ctx, args[0], rest),
                "install" => Install(ctx, rest),
                "import" => Import(ctx, rest),
                "create" => await CreateAsync(ctx, rest),
                "vacuum" => await VacuumAsync(ctx, rest),
                "avail" or "available" or "update" or "ancestry" or "publish" =>
                    Fail(ctx, args[0], "NotSupported", $"imgadm {args[0]} is not supported here: it talks to image servers over the network"),
                _ => Fail(ctx, null, "UnknownCommand", $"unknown command: \"{args[0]}\""),
            };
        }
        catch (UsageException e)
        {
            return Fail(ctx, args[0], "Usage", e.Message);
        }
    }

    private static int Help(CommandContext ctx)
    {
        ctx.Out.WriteLine(HelpText);
        return 0;
    }

    /// <summary>A usage error found while parsing (dashdash's and imgadm's UsageError).</summary>
    private sealed class UsageException(string message) : Exception(message);

    /// <summary>cmdln's error line: "imgadm SUBCMD: error (Code): message", exit 1.</summary>
    private static int Fail(CommandContext ctx, string? subcmd, string code, string message)
    {
        ctx.Err.WriteLine($"imgadm{(subcmd is null ? "" : " " + subcmd)}: error ({code}): {message}");
        return 1;
    }

    private static int Fail(CommandContext ctx, string subcmd, ImageError error) => Fail(ctx, subcmd, error.Code, error.Message);

    /// <summary>Options parsed as dashdash does (anywhere on the line); its wording for an unknown one.</summary>
    private static Getopt Options(string[] args, string spec, params string[] longSpec)
    {
        var g = Getopt.Parse(args, ":" + spec, longSpec, permute: true);
        if (g.Error is null) return g;
        string option = g.ErrorLongOption is string l ? "--" + l : "-" + g.ErrorOption;
        throw new UsageException(g.ErrorMissingValue ? $"do not have enough args for \"{option}\" option" : $"unknown option: \"{option}\"");
    }

    private static void Refuse(Getopt g, string subcmd, string option, string why)
    {
        if (g.Has(option)) throw new UsageException($"imgadm {subcmd} -{option} is not supported here: {why}");
    }

    /// <summary>-P POOL: only the zones pool holds images here.</summary>
    private static void OnlyZones(Getopt g)
    {
        if (g.Value("P") is string pool && pool != ImageStore.Zpool)
            throw new UsageException($"-P {pool}: images are kept on the \"{ImageStore.Zpool}\" pool only here");
    }

    private static string OneUuid(Getopt g)
    {
        if (g.Operands.Count != 1)
            throw new UsageException($"incorrect number of args ({g.Operands.Count}): \"{string.Join(' ', g.Operands)}\"");
        return g.Operands[0];
    }

    private static bool IsUuid(string s) => ImageManifest.UuidPattern().IsMatch(s);

    private static string Json(JsonNode node) => node.ToJsonString(ImageManifest.Pretty);

    // ---- sources ----

    private static int Sources(CommandContext ctx, string[] args)
    {
        var g = Options(args, "hvja:d:ect:kf", "help=h", "verbose=v", "json=j", "check=c", "type:=t", "insecure=k", "force=f", "add-docker-hub");
        if (g.Has("h")) return HelpFor(ctx, "sources", "    imgadm sources [--verbose|-v] [--json|-j]  # list sources\n    imgadm sources -a <dir> [-t imgapi]       # add a source\n    imgadm sources -d <dir>                   # delete a source\n    imgadm sources -c                         # check current sources");
        if (g.Operands.Count > 0) throw new UsageException("unexpected args: " + string.Join(' ', g.Operands));
        Refuse(g, "sources", "e", "there is no editor");
        Refuse(g, "sources", "k", "sources are local directories, without TLS");
        if (g.Has("add-docker-hub")) throw new UsageException("imgadm sources --add-docker-hub is not supported here: docker sources are not supported");
        int actions = (g.Has("a") ? 1 : 0) + (g.Has("d") ? 1 : 0) + (g.Has("c") ? 1 : 0);
        if (actions > 1) throw new UsageException("cannot specify more than one of \"-a\", \"-d\", \"-e\", and \"-c\"");
        string type = g.Value("t") ?? "imgapi";
        if (type != "imgapi") throw new UsageException($"source type \"{type}\" is not supported here: only \"imgapi\" (a local directory laid out as one)");
        var store = ctx.Host.Images;
        if (g.Value("a") is string add)
        {
            string? dir = ImageStore.NormalizeSource(add, ctx.WorkingDirectory, out string? problem);
            if (dir is null) return Fail(ctx, "sources", "NotSupported", problem!);
            if (!g.Has("f") && !Directory.Exists(dir))
                return Fail(ctx, "sources", "SourcePing", $"unexpected ping error with \"imgapi\" image source \"{dir}\": no such directory");
            ctx.Out.WriteLine(store.AddSource(dir, type) ? $"Added \"{type}\" image source \"{dir}\"" : $"Already have \"{type}\" image source \"{dir}\", no change");
            return 0;
        }
        if (g.Value("d") is string del)
        {
            string dir = ImageStore.NormalizeSource(del, ctx.WorkingDirectory, out _) ?? del;
            var had = store.Sources().FirstOrDefault(s => s.Url == dir);
            if (had is null || !store.DeleteSource(dir)) ctx.Out.WriteLine($"Do not have image source \"{del}\", no change");
            else ctx.Out.WriteLine($"Deleted \"{had.Type}\" image source \"{dir}\"");
            return 0;
        }
        var sources = store.Sources();
        if (g.Has("c"))
        {
            var rows = sources.Select(s => new Dictionary<string, string>
            {
                ["url"] = s.Url, ["type"] = s.Type, ["ok"] = Directory.Exists(s.Url) ? "true" : "false",
                ["error"] = Directory.Exists(s.Url) ? "-" : "no such directory",
            }).ToList();
            Table(ctx, ["url", "type", "ok", "error"], rows, skipHeader: false);
            return 0;
        }
        if (g.Has("j"))
        {
            var array = new JsonArray();
            foreach (var s in sources) array.Add(new JsonObject { ["url"] = s.Url, ["type"] = s.Type });
            ctx.Out.WriteLine(Json(array));
        }
        else if (g.Has("v"))
            Table(ctx, ["url", "type", "insecure"], sources.Select(s => new Dictionary<string, string> { ["url"] = s.Url, ["type"] = s.Type, ["insecure"] = "-" }).ToList(), false);
        else
            foreach (var s in sources) ctx.Out.WriteLine(s.Url);
        return 0;
    }

    private static int HelpFor(CommandContext ctx, string subcmd, string usage)
    {
        ctx.Out.WriteLine($"Usage:\n{usage}");
        return 0;
    }

    // ---- list ----

    private static int List(CommandContext ctx, string[] args)
    {
        var g = Options(args, "hjHo:s:", "help=h", "json=j", "docker");
        if (g.Has("h")) return HelpFor(ctx, "list", "    imgadm list [-j] [-H] [-o FIELD,...] [-s FIELD,...] [FIELD=VALUE ...]");
        if (g.Has("docker")) throw new UsageException("imgadm list --docker is not supported here: docker images are not supported");
        var filters = new List<(string Field, string Value)>();
        foreach (string arg in g.Operands)
        {
            int eq = arg.IndexOf('=');
            if (eq < 0) throw new UsageException($"invalid filter: \"{arg}\" (must be of the form \"field=value\")");
            filters.Add((arg[..eq], arg[(eq + 1)..]));
        }
        string[] columns = Split(g.Value("o") ?? DefaultColumns);
        string[] sort = Split(g.Value("s") ?? "published_at,name");
        var images = ctx.Host.Images.List().Where(ii => Matches(Row(ii), filters)).ToList();
        if (g.Has("j"))
        {
            var array = new JsonArray();
            foreach (var ii in images) array.Add(InfoJson(ii));
            ctx.Out.WriteLine(Json(array));
            return 0;
        }
        var rows = images.Select(Row).ToList();
        rows.Sort((a, b) =>
        {
            foreach (string key in sort)
            {
                bool descending = key.StartsWith('-');
                string k = descending ? key[1..] : key;
                int c = string.CompareOrdinal(Cell(a, k), Cell(b, k));
                if (c != 0) return descending ? -c : c;
            }
            return 0;
        });
        Table(ctx, columns, rows.Select(r => columns.ToDictionary(c => c, c => Cell(r, c))).ToList(), g.Has("H"));
        return 0;
    }

    private static string[] Split(string list) => list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

    /// <summary>cli.js rowFromImageInfo: the manifest's fields and the computed ones.</summary>
    private static JsonObject Row(ImageInfo ii)
    {
        var row = (JsonObject)ii.Manifest.Json.DeepClone();
        if (ii.Manifest.PublishedAt is string at)
        {
            row["published_date"] = at.Length >= 10 ? at[..10] : at;
            row["pub"] = row["published_date"]!.DeepClone();
            row["published"] = System.Text.RegularExpressions.Regex.Replace(at, "\\.\\d+Z$", "Z");
        }
        if (ii.Source is not null) row["source"] = ii.Source;
        row["clones"] = ii.Clones.Count;
        row["zpool"] = ii.Zpool;
        if (ii.Manifest.FileSize is long size) row["size"] = size;
        return row;
    }

    /// <summary>A row's value of a dotted field as tabula shows it: strings bare, others as JSON, "-" when missing.</summary>
    private static string Cell(JsonObject row, string field) => Lookup(row, field) switch
    {
        null => "-",
        JsonValue v when v.TryGetValue(out string? s) => s,
        JsonNode node => node.ToJsonString(),
    };

    private static JsonNode? Lookup(JsonObject row, string field)
    {
        JsonNode? node = row;
        foreach (string part in field.Split('.'))
            if ((node = node is JsonObject o ? o[part] : null) is null) return null;
        return node;
    }

    /// <summary>cli.js filterImagesInfo: "true"/"false" match booleans, "~SUB" a substring, else the exact string.</summary>
    private static bool Matches(JsonObject row, List<(string Field, string Value)> filters)
    {
        foreach (var (field, value) in filters)
        {
            if (Lookup(row, field) is null) return false;
            string actual = Cell(row, field);
            bool ok = value.StartsWith('~') ? actual.Contains(value[1..], StringComparison.Ordinal) : actual == value;
            if (!ok) return false;
        }
        return true;
    }

    /// <summary>tabula: a header of the upper-cased column names, columns two spaces apart, the last not padded.</summary>
    private static void Table(CommandContext ctx, string[] columns, List<Dictionary<string, string>> rows, bool skipHeader)
    {
        int[] widths = columns.Select(c => Math.Max(skipHeader ? 0 : c.Length, rows.Count == 0 ? 0 : rows.Max(r => r[c].Length))).ToArray();
        var sb = new StringBuilder();
        void Line(IReadOnlyList<string> cells)
        {
            sb.Clear();
            for (int i = 0; i < cells.Count; i++)
            {
                if (i > 0) sb.Append("  ");
                sb.Append(i == cells.Count - 1 ? cells[i] : cells[i].PadRight(widths[i]));
            }
            ctx.Out.WriteLine(sb.ToString().TrimEnd());
        }
        if (!skipHeader) Line(columns.Select(c => c.ToUpperInvariant()).ToList());
        foreach (var r in rows) Line(columns.Select(c => r[c]).ToList());
    }

    /// <summary>An image as imgadm's getImage and listImages give it.</summary>
    private static JsonObject InfoJson(ImageInfo ii)
    {
        var o = new JsonObject
        {
            ["manifest"] = ii.Manifest.Json.DeepClone(),
            ["zpool"] = ii.Zpool,
            ["cloneNames"] = new JsonArray([.. ii.Clones.Select(c => (JsonNode)JsonValue.Create(c)!)]),
            ["clones"] = ii.Clones.Count,
        };
        if (ii.Source is not null) o["source"] = ii.Source;
        return o;
    }

    // ---- get, show, delete ----

    private static int Get(CommandContext ctx, string subcmd, string[] args)
    {
        var g = Options(args, "hP:r", "help=h");
        if (g.Has("h")) return HelpFor(ctx, subcmd, "    imgadm get <uuid>");
        OnlyZones(g);
        string uuid = OneUuid(g);
        if (!IsUuid(uuid)) return Fail(ctx, subcmd, "InvalidUUID", $"invalid uuid: \"{uuid}\"");
        var ii = ctx.Host.Images.Get(uuid);
        if (ii is null) return Fail(ctx, subcmd, "ImageNotInstalled", $"image \"{uuid}\" was not found on zpool \"{ImageStore.Zpool}\"");
        ctx.Out.WriteLine(Json(InfoJson(ii)));
        return 0;
    }

    private static int Show(CommandContext ctx, string[] args)
    {
        var g = Options(args, "h", "help=h");
        if (g.Has("h")) return HelpFor(ctx, "show", "    imgadm show <uuid>");
        string uuid = OneUuid(g);
        if (!IsUuid(uuid)) return Fail(ctx, "show", "ImageNotFound", $"image \"{uuid}\" was not found");
        var found = ctx.Host.Images.FindInSources(uuid, activeOnly: false, out var error);
        if (found is null)
            return error!.Code == "ActiveImageNotFound" ? Fail(ctx, "show", "ImageNotFound", $"image \"{uuid}\" was not found") : Fail(ctx, "show", error);
        ctx.Out.WriteLine(found.Value.Manifest.ToJson());
        return 0;
    }

    private static int Delete(CommandContext ctx, string subcmd, string[] args)
    {
        var g = Options(args, "hP:", "help=h");
        if (g.Has("h")) return HelpFor(ctx, subcmd, "    imgadm delete <uuid>");
        OnlyZones(g);
        string uuid = OneUuid(g);
        if (!IsUuid(uuid)) return Fail(ctx, subcmd, "InvalidUUID", $"invalid uuid: \"{uuid}\"");
        var error = ctx.Host.Images.Delete(uuid);
        if (error is not null) return Fail(ctx, subcmd, error);
        ctx.Out.WriteLine($"Deleted image {uuid}");
        return 0;
    }

    // ---- install, import ----

    private static int Install(CommandContext ctx, string[] args)
    {
        var g = Options(args, "hm:f:P:q", "help=h", "quiet=q");
        if (g.Has("h")) return HelpFor(ctx, "install", "    imgadm install [-P <pool>] -m <manifest> -f <file>");
        OnlyZones(g);
        if (g.Operands.Count != 0) throw new UsageException($"unexpected args ({g.Operands.Count}): \"{string.Join(' ', g.Operands)}\"");
        if (g.Value("m") is not string m) throw new UsageException("-m <manifest> (string) is required");
        if (g.Value("f") is not string f) throw new UsageException("-f <file> (string) is required");
        string manifestPath = ctx.ResolvePath(m), filePath = ctx.ResolvePath(f);
        if (!File.Exists(manifestPath)) throw new UsageException($"manifest path does not exist: \"{m}\"");
        if (!File.Exists(filePath)) throw new UsageException($"file path does not exist: \"{f}\"");
        string text;
        try { text = File.ReadAllText(manifestPath); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return Fail(ctx, "install", "FileSystem", $"cannot read \"{m}\": {e.Message}"); }
        var manifest = ImageManifest.Parse(text, out string? problem);
        if (manifest is null) return Fail(ctx, "install", "InvalidManifest", problem!);
        if (!IsUuid(manifest.Uuid)) return Fail(ctx, "install", "InvalidUUID", $"invalid uuid: \"{(manifest.Json["uuid"] is null ? "undefined" : manifest.Uuid)}\"");
        if (ctx.Host.Images.Get(manifest.Uuid) is ImageInfo have)
        {
            ctx.Out.WriteLine($"Image {have.Manifest.Uuid} ({have.Manifest.Name} {have.Manifest.Version}) is already installed, skipping");
            return 0;
        }
        ctx.Out.WriteLine($"Installing image {manifest.Uuid} ({Str(manifest, "name")}@{Str(manifest, "version")})");
        var error = ctx.Host.Images.Install(manifest, filePath, null, ctx.Out.WriteLine, out bool installed);
        if (error is not null) return Fail(ctx, "install", error);
        if (installed) ctx.Out.WriteLine($"Installed image {manifest.Uuid} ({manifest.Name}@{manifest.Version})");
        return 0;
    }

    /// <summary>A manifest field as util.format's %s shows it ("undefined" when missing).</summary>
    private static string Str(ImageManifest manifest, string field) =>
        manifest.Json[field] switch { null => "undefined", JsonValue v when v.TryGetValue(out string? s) => s, JsonNode n => n.ToJsonString() };

    private static int Import(CommandContext ctx, string[] args)
    {
        var g = Options(args, "hP:qS:", "help=h", "quiet=q", "source:=S");
        if (g.Has("h")) return HelpFor(ctx, "import", "    imgadm import [-P <pool>] [-S <source>] <uuid>");
        OnlyZones(g);
        string arg = OneUuid(g);
        if (!IsUuid(arg)) throw new UsageException($"invalid image-id arg: {JsonSerializer.Serialize(arg)}");
        var store = ctx.Host.Images;
        if (store.Get(arg) is ImageInfo have)
        {
            ctx.Out.WriteLine($"Image {have.Manifest.Uuid} ({have.Manifest.Name} {have.Manifest.Version}) is already installed, skipping");
            return 0;
        }
        (ImageManifest Manifest, string File, string Source)? found;
        ImageError? error;
        if (g.Values("S").Count > 0)
            found = FindInGiven(ctx, g.Values("S"), arg, out error);
        else
            found = store.FindInSources(arg, activeOnly: true, out error);
        if (found is null) return Fail(ctx, "import", error!);
        var (manifest, file, source) = found.Value;
        ctx.Out.WriteLine($"Importing {manifest.Uuid} ({manifest.Name}@{manifest.Version}) from \"{source}\"");
        ctx.Out.WriteLine(manifest.FileSize is long size
            ? $"Must download and install 1 image ({HumanSize(size)})"
            : "Must download and install 1 image");
        error = store.Install(manifest, file, source, ctx.Out.WriteLine, out bool installed);
        if (error is not null) return Fail(ctx, "import", error);
        if (installed) ctx.Out.WriteLine($"Imported image {manifest.Uuid} ({manifest.Name}@{manifest.Version})");
        return 0;
    }

    /// <summary>import -S: the sources given on the command line instead of the configured ones.</summary>
    private static (ImageManifest, string, string)? FindInGiven(CommandContext ctx, IReadOnlyList<string> given, string uuid, out ImageError? error)
    {
        var sources = new List<ImageSource>();
        foreach (string s in given)
        {
            string? dir = ImageStore.NormalizeSource(s, ctx.WorkingDirectory, out string? problem);
            if (dir is null) { error = new ImageError("NotSupported", problem!); return null; }
            sources.Add(new ImageSource(dir, "imgapi"));
        }
        return ctx.Host.Images.FindInSources(uuid, activeOnly: true, out error, sources);
    }

    /// <summary>common.humanSizeFromBytes: one decimal, truncated, binary units.</summary>
    public static string HumanSize(long bytes)
    {
        string[] sizes = ["B", "KiB", "MiB", "GiB", "TiB"];
        if (bytes == 0) return "0 B";
        int i = (int)Math.Floor(Math.Log(bytes) / Math.Log(1024));
        string s = (bytes / Math.Pow(1024, i)).ToString("R", CultureInfo.InvariantCulture);
        int dot = s.IndexOf('.');
        return $"{(dot < 0 ? s + ".0" : s[..(dot + 2)])} {sizes[i]}";
    }

    // ---- create, vacuum ----

    private static async Task<int> CreateAsync(CommandContext ctx, string[] args)
    {
        var g = Options(args, "hm:o:c:is:p:q", "help=h", "output-template:=o", "compression:=c", "incremental=i", "max-origin-depth:",
            "publish:=p", "quiet=q");
        if (g.Has("h")) return HelpFor(ctx, "create", "    imgadm create [<options>] <vm-uuid> [<manifest-field>=<value> ...]");
        if (g.Operands.Count < 1) throw new UsageException($"incorrect number of args (0): \"\"");
        string vm = g.Operands[0];
        if (!IsUuid(vm)) return Fail(ctx, "create", "InvalidUUID", $"invalid uuid: \"{vm}\"");
        Refuse(g, "create", "s", "a prepare-image script needs the guest's metadata agent (mdata), which is not here; prepare and stop the VM, then create");
        Refuse(g, "create", "p", "publishing goes to an image server over the network");
        if (g.Has("o") && g.Has("p")) throw new UsageException("cannot specify both -o,--output-template and -p,--publish");
        if (g.Value("max-origin-depth") is string depth && (!int.TryParse(depth, out int d) || d < 2))
            throw new UsageException($"invalid max-origin-depth \"{depth}\": must be greater than 1");
        var fields = new JsonObject();
        if (g.Value("m") is string m)
        {
            string? text;
            if (m == "-")
            {
                var (stdin, error) = ctx.StdinBytes is null ? (null, "no standard input") : await CommandInput.ReadStdinAsync(ctx);
                if (stdin is null) throw new UsageException($"invalid manifest JSON on stdin: {error}");
                text = stdin;
            }
            else
            {
                var (file, error) = await CommandInput.ReadFileAsync(ctx, m);
                if (file is null) return Fail(ctx, "create", "FileSystem", $"cannot read \"{m}\": {error}");
                text = file;
            }
            try
            {
                if (JsonNode.Parse(text) is not JsonObject o) throw new JsonException("not an object");
                foreach (var (k, v) in o) fields[k] = v?.DeepClone();
            }
            catch (Exception e) when (e is JsonException or ArgumentException)
            {
                throw new UsageException(m == "-" ? $"invalid manifest JSON on stdin: {e.Message}" : $"invalid manifest JSON in \"{m}\": {e.Message}");
            }
        }
        foreach (string arg in g.Operands.Skip(1))
        {
            int eq = arg.IndexOf('=');
            if (eq < 0) throw new UsageException($"invalid manifest field arg \"{arg}\": must match \"<field>=<value>\"");
            string key = arg[..eq], value = arg[(eq + 1)..];
            JsonNode? parsed;
            try { parsed = JsonNode.Parse(value); }
            catch (JsonException) { parsed = JsonValue.Create(value); }
            fields[key] = parsed ?? JsonValue.Create(value);
        }
        var request = new ImageStore.CreateRequest(vm, fields, g.Value("c") ?? "none", g.Has("i"), g.Value("o"), ctx.WorkingDirectory);
        var failed = ctx.Host.Images.Create(request, ctx.Out.WriteLine, out _);
        return failed is null ? 0 : Fail(ctx, "create", failed);
    }

    private static async Task<int> VacuumAsync(CommandContext ctx, string[] args)
    {
        var g = Options(args, "hnf", "help=h", "dry-run=n", "force=f");
        if (g.Has("h")) return HelpFor(ctx, "vacuum", "    imgadm vacuum [-n] [-f]");
        if (g.Operands.Count > 0) throw new UsageException("unexpected arguments: " + string.Join(' ', g.Operands));
        var store = ctx.Host.Images;
        var doomed = store.Unused();
        if (doomed.Count == 0) return 0;
        if (!g.Has("f"))
        {
            ctx.Out.WriteLine("This will delete the following images:\n    "
                + string.Join("\n    ", doomed.Select(ii => $"{ii.Manifest.Uuid} ({ii.Manifest.Name}@{ii.Manifest.Version})")));
            ctx.Out.Write(doomed.Count == 1 ? "Delete this image? [y/N] " : $"Delete these {doomed.Count} images? [y/N] ");
            var (answer, _) = ctx.StdinBytes is null ? (null, null) : await CommandInput.ReadStdinAsync(ctx);
            if (answer?.Split('\n')[0].Trim() != "y")
            {
                ctx.Out.WriteLine("Aborting");
                return 0;
            }
            ctx.Out.WriteLine("");
        }
        foreach (var ii in doomed)
        {
            string what = $"{ii.Manifest.Uuid} ({ii.Manifest.Name}@{ii.Manifest.Version})";
            if (g.Has("n")) { ctx.Out.WriteLine($"[dry-run] Deleted image {what}"); continue; }
            var error = store.Delete(ii.Manifest.Uuid);
            if (error is not null)
            {
                ctx.Out.WriteLine($"Error deleting image {what}: {error.Message}");
                return Fail(ctx, "vacuum", error);
            }
            ctx.Out.WriteLine($"Deleted image {what}");
        }
        return 0;
    }
}
