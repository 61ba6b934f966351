using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using SmartOS.Kernel;
using SmartOS.Zones;

namespace SmartOS.Cli.Commands;

/// <summary>
/// vmadm(8): create, list, get, update, start, stop, reboot, delete, lookup and console of VMs,
/// which are zones with a UUID for a name (Host.cs glossary, "VM"; payloads in zones/VmPayload.cs, what get and list show in zones/VmFields.cs; bhyve
/// and kvm guests in zones/HvmGuest.cs). Messages follow vmadm.js, which prints VM.js's error message
/// alone on stderr ("Invalid value(s) for: ram") and exits 1, "Failed to delete VM UUID: ..." for
/// delete, and "Successfully created VM UUID" on success. Starting a running VM and stopping a
/// stopped one are no-ops that exit 0 with VM.js's message (vmadm.js: EALREADYRUNNING, ENOTRUNNING).
/// Properties SmartOS does not know are warned about and dropped from the payload (VM.js). `console` prints a bhyve/kvm guest's serial
/// console so far, or attaches to it (keys to the guest, `~.` detaches) when given standard input, or
/// with -f follows it as the guest writes it (GuestConsole.cs).
/// </summary>
public static class Vmadm
{
    public static readonly CommandDescriptor Descriptor = new("vmadm", "manage SmartOS virtual machines", RunAsync)
    {
        ReadsStdin = true,
        TerminalInput = static a => GuestConsole.IsConsoleLine(a, zlogin: false),
        ZoneRefusal = "vmadm: must be run from the global zone",
        NeedsRunningHost = static a => a.Length > 0 && a[0] is "start" or "stop" or "reboot",
    };

    private const string UsageText = """
        Usage: vmadm <command> [command-specific arguments]

            console [-f] <uuid>
            create [-f <filename>]
            create-snapshot <uuid> <snapname>
            delete <uuid>
            delete-snapshot <uuid> <snapname>
            get <uuid>
            list [-p] [-H] [-o field,...] [-s field,...] [field=value ...]
            lookup [-j|-1] [-o field,...] [field=value ...]
            reboot <uuid> [-F]
            receive [-f <filename>]
            rollback-snapshot <uuid> <snapname>
            send <uuid> [-f <filename>]
            start <uuid>
            stop <uuid> [-F]
            update <uuid> [-f <filename>]
            update <uuid> property=value [property=value ...]
            validate create [-f <filename>]
            validate update <brand> [-f <filename>]
        """;

    private static int Usage(CommandContext ctx, string? why = null)
    {
        if (why != null) ctx.Err.WriteLine("vmadm: " + why);
        ctx.Err.WriteLine(UsageText);
        return 2;
    }

    public static async Task<int> RunAsync(CommandContext ctx, string[] args)
    {
        if (args.Length == 0) return Usage(ctx);
        // In a zone the dispatcher refuses vmadm first, with Descriptor.ZoneRefusal.
        string[] rest = args[1..];
        return args[0] switch
        {
            "create" => await CreateAsync(ctx, rest),
            "list" => List(ctx, rest),
            "lookup" => Lookup(ctx, rest),
            "get" => Get(ctx, rest),
            "update" => await UpdateAsync(ctx, rest),
            "start" => await LifecycleAsync(ctx, rest, "start"),
            "stop" => await LifecycleAsync(ctx, rest, "stop"),
            "reboot" => await LifecycleAsync(ctx, rest, "reboot"),
            "delete" => Delete(ctx, rest),
            "console" => await ConsoleAsync(ctx, rest),
            "create-snapshot" => Snapshot(ctx, rest, "create-snapshot"),
            "delete-snapshot" => Snapshot(ctx, rest, "delete-snapshot"),
            "rollback-snapshot" => Snapshot(ctx, rest, "rollback-snapshot"),
            "send" => await VmadmMigration.SendAsync(ctx, rest),
            "receive" => await VmadmMigration.ReceiveAsync(ctx, rest),
            "validate" => await ValidateAsync(ctx, rest),
            _ => Usage(ctx, $"unknown command '{args[0]}'"),
        };
    }

    /// <summary>The JSON payload from -f FILE or standard input, read off the loop and bounded
    /// (CommandInput); null text with the exit status when there is none.</summary>
    private static async Task<(string? Text, int Code)> ReadPayloadAsync(CommandContext ctx, Getopt g, string verb)
    {
        if (g.Value("f") is string file)
        {
            var (text, error) = await CommandInput.ReadFileAsync(ctx, file);
            if (text != null) return (text, 0);
            ctx.Err.WriteLine($"Failed to {verb} VM: unable to read {file}: {error}");
            return (null, 1);
        }
        if (ctx.StdinBytes != null)
        {
            var (text, error) = await CommandInput.ReadStdinAsync(ctx);
            if (text != null) return (text, 0);
            ctx.Err.WriteLine($"Failed to {verb} VM: {error}");
            return (null, 1);
        }
        return (null, Usage(ctx, $"{verb}: no payload: give -f <filename> or JSON on stdin"));
    }

    private static async Task<int> CreateAsync(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "f:");
        if (g.Error != null || g.Operands.Count > 0) return Usage(ctx, g.Error ?? "create: too many arguments");
        var (text, code) = await ReadPayloadAsync(ctx, g, "create");
        if (text == null) return code;
        var host = ctx.Host;
        ZoneConfig cfg;
        bool noWait = false;
        var warnings = new List<string>();
        try
        {
            var payload = VmModel.ParseObject(text);
            cfg = VmModel.BuildCreate(host, payload, ctx.WorkingDirectory, warnings);
            noWait = VmModel.NoWait(payload);
        }
        catch (VmModel.PayloadError e)
        {
            foreach (string w in warnings) ctx.Err.WriteLine(w);
            ctx.Err.WriteLine(e.Message);
            return 1;
        }
        foreach (string w in warnings) ctx.Err.WriteLine(w);
        // A bhyve or kvm VM's disks are made first, and taken back if the VM cannot be (VmDisks.cs rule 3).
        if (VmModel.ApplyDisks(host, cfg, out var undoDisks) is string diskError)
        {
            ctx.Err.WriteLine($"Failed to create VM {cfg.Uuid}: {diskError}");
            return 1;
        }
        var err = host.Zones.Commit(cfg);
        if (err.IsOk && !(err = host.Zones.Install(cfg.Name)).IsOk) host.Zones.Delete(cfg.Name);
        if (!err.IsOk)
        {
            undoDisks();
            ctx.Err.WriteLine($"Failed to create VM {cfg.Uuid}: {err.Message}");
            return 1;
        }
        if (cfg.Vm!.Quota != null && VmDatasets.Of(host, cfg) is null)
            ctx.Err.WriteLine("vmadm: warning: quota is recorded but not enforced yet (there is no storage pool)");
        // As VM.js's create, success is told once the VM is up (its addresses too), unless nowait.
        if (cfg.Autoboot)
        {
            // A bhyve or kvm VM without an image is created and stays installed: it has nothing to
            // boot here (VmPayload.ApplyHvm); said, not refused.
            if (HvmGuest.IsHvm(cfg.Brand) && cfg.Vm is { Guest: null, ImagePath: null, Kernel: null })
            {
                ctx.Err.WriteLine($"Warning, VM {cfg.Uuid} not started: {HvmGuest.NoImage(cfg.Brand)}");
                ctx.Err.WriteLine($"Successfully created VM {cfg.Uuid}");
                return 0;
            }
            if (!ctx.HostRunning)
            {
                ctx.Err.WriteLine($"Successfully created VM {cfg.Uuid}");
                ctx.Err.WriteLine("vmadm: the host is not booted: the VM will start when 'smartos boot' boots it (autoboot)");
                return 0;
            }
            if (host.Zones.Boot(cfg.Name) is { IsOk: false } be)
            {
                ctx.Err.WriteLine($"Failed to start VM {cfg.Uuid}: {be.Message}");
                return 1;
            }
            if (!noWait)
            {
                await UpAsync(ctx, cfg.Name);
                foreach (string missing in await AddressesUpAsync(ctx, cfg.Name))
                    ctx.Err.WriteLine($"Warning, VM {cfg.Uuid} is running without an address: {missing}");
            }
        }
        ctx.Err.WriteLine($"Successfully created VM {cfg.Uuid}");
        return 0;
    }

    /// <summary>Waits, without holding the loop, until a zone just booted has its dhcp and addrconf
    /// addresses too, or they never will (bounded in the zone's time: IZoneStack.AddressesUp); returns
    /// those that never came. Ctrl-C stops the wait, not the zone.</summary>
    private static async Task<IReadOnlyList<string>> AddressesUpAsync(CommandContext ctx, string name)
    {
        if (ctx.Host.Zones.Find(name)?.Stack is not IZoneStack stack) return [];
        try { return await stack.AddressesUp.WaitAsync(ctx.Cancel); }
        catch (OperationCanceledException) { return []; }
    }

    /// <summary>
    /// Waits, without holding the loop, until a zone just booted has its static addresses usable and
    /// its default routes in (duplicate address detection takes about a second of the zone's time),
    /// so that what follows vmadm create or start can use the network at once, as on SmartOS where
    /// the zone's svc:/network/physical has come online by then. Ctrl-C stops the wait, not the zone.
    /// </summary>
    private static async Task UpAsync(CommandContext ctx, string name)
    {
        if (ctx.Host.Zones.Find(name)?.Stack is not IZoneStack stack || stack.Up.IsCompleted) return;
        try { await stack.Up.WaitAsync(ctx.Cancel); }
        catch (OperationCanceledException) { }
    }

    /// <summary>
    /// vmadm validate create|update: the payload's shape against what the action takes for the brand
    /// (VmValidate.cs); vmadm.js prints "VALID 'ACTION' payload for BRAND brand VMs." or VM.js's error
    /// object, and exits 1 then.
    /// </summary>
    private static async Task<int> ValidateAsync(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "f:", permute: true);
        if (g.Error != null) return Usage(ctx, g.Error);
        if (g.Operands.Count < 1 || g.Operands[0] is not ("create" or "update")) return Usage(ctx, "Will not validate without a valid action.");
        string action = g.Operands[0];
        if (action == "update" ? g.Operands.Count != 2 : g.Operands.Count != 1) return Usage(ctx, "Will not validate without a valid action and brand.");
        var (text, code) = await ReadPayloadAsync(ctx, g, "validate");
        if (text == null) return code;
        JsonObject payload;
        try { payload = VmModel.ParseObject(text); }
        catch (VmModel.PayloadError e)
        {
            ctx.Err.WriteLine(e.Message);
            return 1;
        }
        string brand = action == "update" ? g.Operands[1] : payload["brand"] is JsonValue bv && bv.TryGetValue(out string? b) ? b : "undefined";
        if (!VmModel.IsBrand(brand))
        {
            ctx.Err.WriteLine(new JsonObject { ["bad_brand"] = brand }.ToJsonString(VmModel.Pretty));
            return 1;
        }
        if (VmModel.Validate(brand, action, payload) is JsonObject errors)
        {
            ctx.Err.WriteLine(VmModel.FormatValidation(errors));
            return 1;
        }
        ctx.Out.WriteLine($"VALID '{action}' payload for {brand} brand VMs.");
        return 0;
    }

    private static Zone? FindVm(CommandContext ctx, string uuid, string verb)
    {
        // vmload-zoneadm.js passes zoneadm's message on; vmadm.js prefixes only delete's.
        var z = VmModel.Find(ctx.Host, uuid);
        if (z == null) ctx.Err.WriteLine((verb == "delete" ? $"Failed to delete VM {uuid}: " : "") + $"zoneadm: {uuid}: No such zone configured");
        return z;
    }

    private static int Get(CommandContext ctx, string[] args)
    {
        if (args.Length != 1) return Usage(ctx, "get: exactly one UUID is required");
        var z = FindVm(ctx, args[0], "get");
        if (z == null) return 1;
        ctx.Out.WriteLine(VmModel.ToJson(z, ctx.Host).ToJsonString(VmModel.Pretty));
        return 0;
    }

    /// <summary>vmadm console [-f] UUID: prints the guest's console so far, attaches to it when the
    /// command has standard input, or with -f follows it (GuestConsole.cs).</summary>
    private static async Task<int> ConsoleAsync(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "f");
        if (g.Error != null) return Usage(ctx, g.Error);
        if (g.Operands.Count != 1) return Usage(ctx, "console: exactly one UUID is required");
        var z = FindVm(ctx, g.Operands[0], "console");
        if (z == null) return 1;
        return await GuestConsole.RunAsync(ctx, z, $"Failed to console VM {z.Name}: ", follow: g.Has("f"));
    }

    private static async Task<int> UpdateAsync(CommandContext ctx, string[] args)
    {
        if (args.Length == 0 || args[0].StartsWith('-')) return Usage(ctx, "update: a UUID is required");
        if (FindVm(ctx, args[0], "update") == null) return 1;
        var g = Getopt.Parse(args[1..], "f:");
        if (g.Error != null) return Usage(ctx, g.Error);
        if (g.Operands.Count > 0 && g.Has("f")) return Usage(ctx, "update: give -f <filename> or property=value, not both");
        string? text = null;
        if (g.Operands.Count == 0)
        {
            (text, int code) = await ReadPayloadAsync(ctx, g, "update");
            if (text == null) return code;
        }
        // The VM is looked up again: on a running host it may have gone while the payload was read.
        var z = FindVm(ctx, args[0], "update");
        if (z == null) return 1;
        ZoneConfig next;
        var warnings = new List<string>();
        try
        {
            JsonObject payload = text == null ? VmModel.FromKeyValues(g.Operands) : VmModel.ParseObject(text);
            next = VmModel.BuildUpdate(ctx.Host, z, payload, warnings);
        }
        catch (VmModel.PayloadError e)
        {
            foreach (string w in warnings) ctx.Err.WriteLine(w);
            ctx.Err.WriteLine(e.Message);
            return 1;
        }
        foreach (string w in warnings) ctx.Err.WriteLine(w);
        // A running VM's spoofing flags change its VNICs at once (VmLinks.cs); checked before anything is.
        if (VmModel.CheckLive(ctx.Host, z, next) is string live)
        {
            ctx.Err.WriteLine($"Failed to update VM {z.Name}: {live}");
            return 1;
        }
        // The quota is the dataset's (VmDatasets.cs rule 2): set first, so that zfs's refusal (a quota
        // below usage) leaves the configuration as it was; VM.js prints zfs's message alone.
        long? oldQuota = z.Config.Vm?.Quota;
        bool quotaChanged = next.Vm!.Quota != oldQuota;
        if (quotaChanged && VmDatasets.ApplyQuota(ctx.Host, z, next.Vm.Quota) is string quotaErr)
        {
            ctx.Err.WriteLine(quotaErr);
            return 1;
        }
        // Disks are made and resized before the configuration is written, and taken back if it cannot
        // be; removed ones are destroyed after (VmDisks.cs rules 3, 5).
        var before = z.Config;
        if (VmModel.ApplyDisks(ctx.Host, next, out var undoDisks) is string diskError)
        {
            if (quotaChanged) VmDatasets.ApplyQuota(ctx.Host, z, oldQuota);
            ctx.Err.WriteLine($"Failed to update VM {z.Name}: {diskError}");
            return 1;
        }
        if (ctx.Host.Zones.Commit(next) is { IsOk: false } err)
        {
            undoDisks();
            if (quotaChanged) VmDatasets.ApplyQuota(ctx.Host, z, oldQuota);
            ctx.Err.WriteLine($"Failed to update VM {z.Name}: {err.Message}");
            return 1;
        }
        if (VmModel.DestroyRemovedDisks(ctx.Host, before, next) is string removeError)
        {
            ctx.Err.WriteLine($"Failed to update VM {z.Name}: {removeError}");
            return 1;
        }
        if (VmModel.ApplyLive(ctx.Host, z) is string applyErr)
        {
            ctx.Err.WriteLine($"Failed to update VM {z.Name}: {applyErr}");
            return 1;
        }
        if (next.Vm.Quota != null && quotaChanged && VmDatasets.Of(ctx.Host, z.Config) is null)
            ctx.Err.WriteLine("vmadm: warning: quota is recorded but not enforced yet (there is no storage pool)");
        ctx.Err.WriteLine($"Successfully updated VM {z.Name}");
        return 0;
    }

    private static async Task<int> LifecycleAsync(CommandContext ctx, string[] args, string verb)
    {
        var g = Getopt.Parse(args, "F", permute: true);
        if (g.Error != null || g.Operands.Count != 1) return Usage(ctx, g.Error ?? $"{verb}: exactly one UUID is required");
        string uuid = g.Operands[0];
        var z = FindVm(ctx, uuid, verb);
        if (z == null) return 1;
        var zones = ctx.Host.Zones;
        string state = VmModel.StateName(z.State);
        ZoneStatus err;
        switch (verb)
        {
            case "start":
                // VM.js start: "VM UUID is already 'running'" (EALREADYRUNNING); vmadm.js exits 0 with it.
                if (z.State == ZoneState.Running)
                {
                    ctx.Err.WriteLine($"VM {uuid} is already 'running'");
                    return 0;
                }
                // VM.js start checks the nic tags first: 'Invalid nic tag "X"'.
                err = VmModel.NicTagProblem(ctx.Host, z.Config) is string badTags ? ZoneStatus.Problem(ZoneError.InvalidProperty, badTags) : zones.Boot(uuid);
                if (!err.IsOk) break;
                await UpAsync(ctx, uuid);
                ctx.Err.WriteLine($"Successfully started VM {uuid}");
                break;
            case "stop":
                // VM.js stop: "VM UUID is already not 'running' (currently: STATE)" (ENOTRUNNING); exit 0.
                if (z.State != ZoneState.Running)
                {
                    ctx.Err.WriteLine($"VM {uuid} is already not 'running' (currently: {state})");
                    return 0;
                }
                err = g.Has("F") ? zones.Halt(uuid) : zones.Shutdown(uuid);
                if (err.IsOk) ctx.Err.WriteLine($"Successfully completed stop for VM {uuid}");
                break;
            default:
                // VM.js reboot: 'Cannot reboot vm from state "STATE", must be "running"'.
                // A nic tag gone since boot refuses the reboot before the VM is touched (it stays running).
                // -F is VM.js's reset: 'Cannot reset vm from state "STATE", must be "running".' (ZoneTable.Reset).
                err = z.State != ZoneState.Running
                    ? ZoneStatus.Problem(ZoneError.BadZoneState, g.Has("F")
                        ? $"Cannot reset vm from state \"{state}\", must be \"running\"."
                        : $"Cannot reboot vm from state \"{state}\", must be \"running\"")
                    : VmModel.NicTagProblem(ctx.Host, z.Config) is string tags ? ZoneStatus.Problem(ZoneError.InvalidProperty, "Cannot reboot vm: " + tags)
                    : g.Has("F") ? zones.Reset(uuid) : zones.Reboot(uuid);
                if (err.IsOk) ctx.Err.WriteLine($"Successfully completed reboot for VM {uuid}");
                break;
        }
        if (err.IsOk) return 0;
        ctx.Err.WriteLine(err.Message);
        return 1;
    }

    private static int Delete(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "F", permute: true);
        if (g.Error != null || g.Operands.Count != 1) return Usage(ctx, g.Error ?? "delete: exactly one UUID is required");
        string uuid = g.Operands[0];
        var z = FindVm(ctx, uuid, "delete");
        if (z == null) return 1;
        var zones = ctx.Host.Zones;
        // vmadm delete stops a running VM first, then destroys its disks (VmDisks.cs rule 6).
        var err = zones.Halt(uuid);
        if (err.IsOk && VmModel.DestroyRemovedDisks(ctx.Host, z.Config, null) is string diskError) err = ZoneStatus.Problem(ZoneError.System, diskError);
        if (err.IsOk) err = zones.Uninstall(uuid);
        if (err.IsOk) err = zones.Delete(uuid);
        if (!err.IsOk)
        {
            ctx.Err.WriteLine($"Failed to delete VM {uuid}: {err.Message}");
            return 1;
        }
        ctx.Err.WriteLine($"Successfully deleted VM {uuid}");
        return 0;
    }

    /// <summary>
    /// vmadm create-snapshot, delete-snapshot and rollback-snapshot UUID SNAPNAME (VmDatasets.cs rule
    /// 5): vmadm.js's usage for a wrong count, VM.js's error alone on failure, "Created snapshot NAME
    /// for VM UUID" (Deleted, Rolled back) on success. A rollback starts the VM again only on a running
    /// host (smartos boot, a scenario), where VMs run.
    /// </summary>
    private static int Snapshot(CommandContext ctx, string[] args, string verb)
    {
        if (args.Length == 0) return Usage(ctx, $"{verb}: a UUID is required");
        if (args.Length != 2) return Usage(ctx, $"Wrong number of parameters to \"{verb}\"");
        var z = FindVm(ctx, args[0], verb);
        if (z == null) return 1;
        string name = args[1];
        string? error = verb switch
        {
            "create-snapshot" => VmDatasets.CreateSnapshot(ctx.Host, z, name),
            "delete-snapshot" => VmDatasets.DeleteSnapshot(ctx.Host, z, name),
            _ => VmDatasets.RollbackSnapshot(ctx.Host, z, name, start: ctx.HostRunning),
        };
        if (error != null)
        {
            ctx.Err.WriteLine(error);
            return 1;
        }
        ctx.Err.WriteLine(verb switch
        {
            "create-snapshot" => $"Created snapshot {name} for VM {z.Name}",
            "delete-snapshot" => $"Deleted snapshot {name} for VM {z.Name}",
            _ => $"Rolled back snapshot {name} for VM {z.Name}",
        });
        return 0;
    }

    // ---- list and lookup ----------------------------------------------------------------------

    private sealed record Filter(string Field, string? Value, Regex? Match);

    private static bool TryFilters(CommandContext ctx, IEnumerable<string> operands, out List<Filter> filters)
    {
        filters = [];
        foreach (string op in operands)
        {
            int eq = op.IndexOf('=');
            if (eq <= 0) { ctx.Err.WriteLine($"vmadm: invalid filter '{op}': use field=value or field=~regex"); return false; }
            string field = op[..eq];
            // vmadm.js validFilterKey: LIST_FIELDS and nics.[*0-9]*.(gateway|interface|ip|mac|...).
            if (!VmModel.IsField(field)) { ctx.Err.WriteLine($"Invalid filter key: \"{field}\""); return false; }
            string value = op[(eq + 1)..];
            if (value.StartsWith('~'))
            {
                try { filters.Add(new(field, null, new Regex(value[1..], RegexOptions.None, TimeSpan.FromSeconds(1)))); }
                catch (ArgumentException e) { ctx.Err.WriteLine($"vmadm: invalid regular expression in '{op}': {e.Message}"); return false; }
            }
            else filters.Add(new(field, value, null));
        }
        return true;
    }

    private static List<Zone>? Select(CommandContext ctx, List<Filter> filters)
    {
        var list = new List<Zone>();
        foreach (var z in ctx.Host.Zones.Zones)
        {
            if (!z.IsVm) continue;
            bool ok = true;
            foreach (var f in filters)
            {
                var values = VmModel.Field(z, f.Field)!;
                if (!values.Any(v => f.Match?.IsMatch(v) ?? v == f.Value)) { ok = false; break; }
            }
            if (ok) list.Add(z);
        }
        return list;
    }

    private static int List(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "pHo:s:", permute: true);
        if (g.Error != null) return Usage(ctx, g.Error);
        string[] fields = (g.Value("o") ?? "uuid,type,ram,state,alias").Split(',');
        string[] sort = (g.Value("s") ?? "ram,uuid").Split(',');
        // vmadm.js: validColumnKey refuses nics.*.x ("which one to show?"), then formatVMList
        // refuses a field getListProperties does not know.
        foreach (string f in fields)
        {
            if (f.StartsWith("nics.*.", StringComparison.Ordinal)) { ctx.Err.WriteLine($"Invalid order key: \"{f}\""); return 1; }
        }
        foreach (string f in sort)
        {
            if (f.TrimStart('-', '+').StartsWith("nics.*.", StringComparison.Ordinal)) { ctx.Err.WriteLine($"Invalid sort key: \"{f}\""); return 1; }
        }
        if (!TryFilters(ctx, g.Operands, out var filters)) return 1;
        foreach (string f in sort)
        {
            if (ListWidth(f.TrimStart('-', '+')) == 0) { ctx.Err.WriteLine($"invalid sort field: {f}"); return 1; }
        }
        foreach (string f in fields)
        {
            if (ListWidth(f) == 0) { ctx.Err.WriteLine($"invalid order field: {f}"); return 1; }
        }
        var vms = Select(ctx, filters);
        if (vms == null) return 1;
        var order = new Dictionary<Zone, int>();
        for (int k = 0; k < vms.Count; k++) order[vms[k]] = k;
        vms.Sort((a, b) =>
        {
            foreach (string key in sort)
            {
                bool desc = key.StartsWith('-');
                string k = key.TrimStart('-', '+');
                string va = Cell(a, k, "-"), vb = Cell(b, k, "-");
                int c = long.TryParse(va, out long na) && long.TryParse(vb, out long nb) ? na.CompareTo(nb) : string.CompareOrdinal(va, vb);
                if (c != 0) return desc ? -c : c;
            }
            return order[a].CompareTo(order[b]); // Ties keep creation order.
        });
        bool parsable = g.Has("p");
        var sb = new StringBuilder();
        if (!parsable && !g.Has("H")) sb.Append(Row([.. fields.Select(f => f.ToUpperInvariant())], fields, false));
        foreach (var z in vms) sb.Append(Row([.. fields.Select(f => Cell(z, f, parsable ? "" : "-"))], fields, parsable));
        ctx.Out.Write(sb.ToString());
        return 0;
    }

    /// <summary>A list cell: the field's values joined with commas (VM.flatten of an array), or
    /// <paramref name="none"/> ("-", or "" with -p) when there is none.</summary>
    private static string Cell(Zone z, string field, string none)
    {
        var values = VmModel.Field(z, field);
        if (values == null || values.Count == 0) return none;
        string v = string.Join(',', values);
        return v == "-" ? none : v;
    }

    /// <summary>vmadm.js's LIST_FIELDS widths for the fields this vmadm lists, 20 for nics.N.key
    /// (getListProperties); 0 for a field it cannot list.</summary>
    private static int ListWidth(string field)
    {
        if (field.StartsWith("nics.", StringComparison.Ordinal))
            return !field.StartsWith("nics.*.", StringComparison.Ordinal) && field.Split('.').Length == 3 && field.Split('.')[1].Length > 0
                && field.Split('.')[1].All(char.IsAsciiDigit) && VmModel.IsField(field) ? 20 : 0;
        return field switch
        {
            "uuid" or "image_uuid" => 36, "type" => 4, "ram" => 7, "state" => 16, "alias" => 10, "brand" => 14,
            "zonename" => 12, "zonepath" => 40, "autoboot" => 8, "max_physical_memory" => 8, "quota" => 5,
            "zone_state" => 10, "zoneid" => 6, "vcpus" => 5, "create_timestamp" or "boot_timestamp" => 24,
            _ => 0,
        };
    }

    /// <summary>One line as vmadm.js's outputVMListLine prints it: each value left-justified in its
    /// column's width, two spaces between columns (a longer value pushes the rest right), trailing
    /// blanks trimmed; with -p, values joined by ':'.</summary>
    private static string Row(string[] values, string[] fields, bool parsable)
    {
        if (parsable) return string.Join(':', values) + "\n";
        var sb = new StringBuilder();
        for (int i = 0; i < values.Length; i++)
        {
            if (i > 0) sb.Append("  ");
            sb.Append(values[i].PadRight(ListWidth(fields[i])));
        }
        return sb.ToString().TrimEnd() + "\n";
    }

    private static int Lookup(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "j1o:", permute: true);
        if (g.Error != null) return Usage(ctx, g.Error);
        if (g.Has("o") && !g.Has("j")) return Usage(ctx, "lookup: -o needs -j");
        if (!TryFilters(ctx, g.Operands, out var filters)) return 1;
        var vms = Select(ctx, filters);
        if (vms == null) return 1;
        if (g.Has("1") && vms.Count != 1)
        {
            ctx.Err.WriteLine($"Requested unique lookup but found {vms.Count} results.");
            return 1;
        }
        if (g.Has("j"))
        {
            string[]? keep = g.Value("o")?.Split(',');
            var arr = new JsonArray();
            foreach (var z in vms)
            {
                var o = VmModel.ToJson(z, ctx.Host);
                if (keep != null) foreach (var key in o.Select(p => p.Key).ToList()) if (Array.IndexOf(keep, key) < 0) o.Remove(key);
                arr.Add(o);
            }
            ctx.Out.WriteLine(arr.ToJsonString(VmModel.Pretty));
            return 0;
        }
        foreach (var z in vms) ctx.Out.WriteLine(z.Name);
        return 0;
    }
}
