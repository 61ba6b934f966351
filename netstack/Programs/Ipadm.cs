using System.Globalization;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack;

/// <summary>
/// ipadm(8): create-if, delete-if, show-if, create-addr (-T static|dhcp|addrconf), delete-addr,
/// show-addr, set-prop/show-prop (forwarding, ttl/hoplimit), set-ifprop -p mtu. Without -t a change
/// that succeeds is also recorded in the zone's persistent configuration (ProgramContext.Persistent)
/// and <see cref="Replay"/> applies the records again when the zone (or the host, for the global
/// zone) boots; delete-if and delete-addr remove the records too, as illumos's do.
/// </summary>
public static class Ipadm
{
    public static readonly ProgramDescriptor Descriptor = new("ipadm", "", "configure IP and IPv6 network interfaces and addresses", RunAsync);

    public static async Task<int> RunAsync(ProgramContext ctx, string[] args)
    {
        if (args.Length == 0) return Usage(ctx);
        string[] rest = args[1..];
        switch (args[0])
        {
            case "create-if": case "create-ip": return CreateIf(ctx, rest);
            case "delete-if": case "delete-ip": return DeleteIf(ctx, rest);
            case "show-if": return ShowIf(ctx, rest);
            case "create-addr": return await CreateAddr(ctx, rest);
            case "delete-addr": return DeleteAddr(ctx, rest);
            case "show-addr": return ShowAddr(ctx, rest);
            case "set-prop": return SetProp(ctx, rest);
            case "show-prop": return ShowProp(ctx, rest);
            case "set-ifprop": return SetIfProp(ctx, rest);
            default:
                ctx.Err.WriteLine($"ipadm: unknown subcommand '{args[0]}'");
                return Usage(ctx);
        }
    }

    private static int Usage(ProgramContext ctx)
    {
        ctx.Err.WriteLine("usage:  ipadm <subcommand> <args> ...");
        ctx.Err.WriteLine("\tcreate-if\t[-t] <interface>\n\tdelete-if\t<interface>\n\tshow-if\t\t[[-p] -o <field>,...] [<interface>]");
        ctx.Err.WriteLine("\tcreate-addr\t[-t] -T static [-d] -a{local|remote}=addr[/prefixlen]\n\t\t\t<addrobj>\n\tcreate-addr\t[-t] -T dhcp [-w <seconds> | forever] <addrobj>\n\tcreate-addr\t[-t] -T addrconf <addrobj>");
        ctx.Err.WriteLine("\tdelete-addr\t<addrobj>\n\tshow-addr\t[[-p] -o <field>,...] [<addrobj>]\n\tset-prop\t[-t] -p <prop>=<value> <protocol>\n\tshow-prop\t[[-c] -o <field>,...] [-p <prop>] [<protocol>]\n\tset-ifprop\t[-t] -p <prop>=<value> -m <protocol> <interface>");
        return 2;
    }

    private static List<string> StripTemporary(string[] args)
    {
        var l = new List<string>(args);
        l.RemoveAll(a => a == "-t");
        return l;
    }

    /// <summary>Edits the persistent records, unless the command was temporary (-t) or the zone has none.</summary>
    private static void Persist(ProgramContext ctx, string[] args, Action<List<string[]>> edit)
    {
        if (ctx.Persistent == null || Array.IndexOf(args, "-t") >= 0) return;
        var records = ctx.Persistent.Load();
        edit(records);
        ctx.Persistent.Save(records);
    }

    /// <summary>Removes the persistent records that <paramref name="match"/> selects; whether there were any.</summary>
    private static bool Unpersist(ProgramContext ctx, Func<string[], bool> match)
    {
        if (ctx.Persistent == null) return false;
        var records = ctx.Persistent.Load();
        int removed = records.RemoveAll(r => match(r));
        if (removed > 0) ctx.Persistent.Save(records);
        return removed > 0;
    }

    /// <summary>The address object a create-addr record names (its last argument).</summary>
    private static bool CreatesAddress(string[] r, Func<string, bool> addrObj) => r.Length > 1 && r[0] == "create-addr" && addrObj(r[^1]);

    /// <summary>Applies persistent records at boot (ipmgmtd's job): each runs as the ipadm command it
    /// was; returns one line per record that failed. A DHCP address keeps trying in the background.</summary>
    public static List<string> Replay(ProgramContext ctx, IEnumerable<string[]> records)
    {
        var problems = new List<string>();
        foreach (var r in records)
        {
            var err = new StringWriter();
            var quiet = new ProgramContext
            {
                Out = TextWriter.Null, Err = err, Cancel = ctx.Cancel, Stack = ctx.Stack, OpenLink = ctx.OpenLink,
                WorkingDirectory = ctx.WorkingDirectory,
            };
            var run = r.Length > 0 && r[0] is "create-if" or "create-addr" or "set-prop" or "set-ifprop"
                ? RunAsync(quiet, r)
                : Task.FromResult(Usage(quiet));
            if (run.IsCompleted && run.Result != 0)
                problems.Add($"ipadm {ConfigText.Echo(string.Join(' ', r))}: {ConfigText.Echo(err.ToString().Split('\n')[0].Trim())}");
        }
        return problems;
    }

    private static int CreateIf(ProgramContext ctx, string[] args)
    {
        var a = StripTemporary(args);
        if (a.Count != 1 || a[0].StartsWith('-')) return Usage(ctx);
        string name = a[0];
        IpStatus st;
        if (ctx.Stack.FindInterface(name) != null) st = IpadmStatus.IfExists;
        else
        {
            var client = ctx.OpenLink?.Invoke(name);
            st = client == null ? IpadmStatus.DladmFailure : ctx.Stack.CreateInterface(name, client);
        }
        if (!st.IsOk)
        {
            ctx.Err.WriteLine($"ipadm: Could not create {name} : {st.Message}");
            return 1;
        }
        Persist(ctx, args, r =>
        {
            if (!r.Exists(x => x is ["create-if", var n] && n == name)) r.Add(["create-if", name]);
        });
        return 0;
    }

    private static int DeleteIf(ProgramContext ctx, string[] args)
    {
        if (args.Length != 1) return Usage(ctx);
        string name = args[0];
        var st = ctx.Stack.DeleteInterface(name);
        // The interface, its addresses and its properties leave the persistent configuration too.
        bool persisted = Unpersist(ctx, r => r is ["create-if", var n] && n == name
            || CreatesAddress(r, o => o.StartsWith(name + "/", StringComparison.Ordinal))
            || r.Length > 1 && r[0] == "set-ifprop" && r[^1] == name);
        if (!st.IsOk && !persisted)
        {
            ctx.Err.WriteLine($"ipadm: Could not delete {name} : {st.Message}");
            return 1;
        }
        return 0;
    }

    // The tables of show-if, show-addr and show-prop are libofmt tables in ipadm.c (ofmt_open,
    // ofmt_print); these are its field names and widths: show_if_fields, show_addr_fields, modprop_fields.
    internal static readonly OutputTable.Field[] ShowIfFields =
        [new("IFNAME", 11), new("STATE", 9), new("CURRENT", 13), new("PERSISTENT", 11)];
    internal static readonly OutputTable.Field[] ShowAddrFields =
        [new("ADDROBJ", 18), new("TYPE", 9), new("STATE", 13), new("CURRENT", 8), new("PERSISTENT", 11), new("ADDR", 46)];
    internal static readonly OutputTable.Field[] ShowPropFields =
        [new("PROTO", 6), new("PROPERTY", 22), new("PERM", 5), new("CURRENT", 13), new("PERSISTENT", 13), new("DEFAULT", 13), new("POSSIBLE", 15)];

    private const string ShowIfUse = "\tshow-if\t\t[[-p] -o <field>,...] [<interface>]\n";
    private const string ShowAddrUse = "\tshow-addr\t[[-p] -o <field>,...] [<addrobj>]\n";
    private const string ShowPropUse = "\tshow-prop\t[[-c] -o <field>,...] [-p <prop>] [<protocol>]";

    /// <summary>die_opterr: ipadm's words for a bad option (getopt without a leading ':' in its spec
    /// reports a missing value as an unknown option, as show-if's and show-addr's "po:" do).</summary>
    private static int OptionError(ProgramContext ctx, Getopt g, string use)
    {
        string what = g.ErrorMissingValue ? $"option '-{g.ErrorOption}' requires a value" : $"unrecognized option '-{g.ErrorOption}'";
        ctx.Err.WriteLine($"ipadm: {what}\nusage: {use}");
        return 1;
    }

    /// <summary>ofmt_open followed by ipadm_ofmt_check: fatal in parsable mode or with no valid field,
    /// else a warning and the valid fields are printed.</summary>
    private static OutputTable? OpenTable(ProgramContext ctx, OutputTable.Field[] fields, string? spec, bool parsable)
    {
        var table = new OutputTable(fields);
        var (fatal, warning) = table.Open(spec, parsable);
        if (fatal != null)
        {
            ctx.Err.WriteLine($"ipadm: {fatal}");
            return null;
        }
        if (warning != null) ctx.Err.WriteLine($"ipadm: warning: {warning}");
        return table;
    }

    private static int ShowIf(ProgramContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "po:");
        if (g.Error != null) return OptionError(ctx, g, ShowIfUse);
        if (g.Operands.Count > 1) return Usage(ctx);
        string? name = g.Operands.Count == 1 ? g.Operands[0] : null;
        bool parsable = g.Has("p");
        var table = OpenTable(ctx, ShowIfFields, g.Value("o"), parsable);
        if (table == null) return 1;
        if (name != null && ctx.Stack.FindInterface(name) == null)
        {
            ctx.Err.WriteLine($"ipadm: Could not get interface(s): {IpStatusText.Of(IpadmStatus.Enxio)}");
            return 1;
        }
        var persistent = ctx.Persistent?.Load() ?? [];
        var rows = new List<Dictionary<string, string>>();
        foreach (var i in ctx.Stack.Interfaces)
        {
            if (name != null && i.Name != name) continue;
            // CURRENT is the 12 flags of print_si_cb's intf_cflags (bmpvIsiVaZ46); PERSISTENT its
            // intf_pflags (s46): both families for an interface a create-if record brings back.
            rows.Add(new()
            {
                ["IFNAME"] = i.Name,
                ["STATE"] = i.IsLoopback || i.Client!.IsOpen ? "ok" : "down",
                ["CURRENT"] = (i.IsLoopback ? "-m-v------" : "bm--------") + "46",
                ["PERSISTENT"] = persistent.Exists(r => r is ["create-if", var n] && n == i.Name) ? "-46" : "---",
            });
        }
        ctx.Out.Write(table.Format(rows, parsable));
        return 0;
    }

    private static async Task<int> CreateAddr(ProgramContext ctx, string[] args)
    {
        var a = StripTemporary(args);
        string? type = null, address = null, wait = null;
        string? addrObj = null;
        for (int i = 0; i < a.Count; i++)
        {
            switch (a[i])
            {
                case "-T" when i + 1 < a.Count: type = a[++i]; break;
                case "-a" when i + 1 < a.Count: address = a[++i]; break;
                case "-w" when i + 1 < a.Count: wait = a[++i]; break;
                case "-d": break;
                default:
                    if (a[i].StartsWith('-') || addrObj != null) return Usage(ctx);
                    addrObj = a[i];
                    break;
            }
        }
        if (type == null || addrObj == null) return Usage(ctx);
        var stack = ctx.Stack;
        IpStatus st;
        switch (type)
        {
            case "static":
            {
                if (address == null) return Usage(ctx);
                if (address.StartsWith("local=", StringComparison.Ordinal)) address = address[6..];
                if (!Programs.TryParseCidr(address, out var ip, out int prefix))
                {
                    ctx.Err.WriteLine($"ipadm: Could not create address: {IpStatusText.Of(IpadmStatus.BadAddr)}");
                    return 1;
                }
                if (address.IndexOf('/') < 0) prefix = ip.IsV4 ? ClassfulPrefix(ip) : 64;
                st = stack.AddAddress(addrObj, ip, prefix, out var obj);
                if (st.IsOk) st = await obj!.Ready;
                break;
            }
            case "dhcp":
            {
                long timeout = 120 * Time.Second;
                if (wait == "forever") timeout = long.MaxValue / 4;
                else if (wait != null)
                {
                    if (!int.TryParse(wait, NumberStyles.None, CultureInfo.InvariantCulture, out int sec)) return Usage(ctx);
                    timeout = sec * Time.Second;
                }
                st = stack.StartDhcp(addrObj, out var client);
                if (st.IsOk)
                {
                    // Kept even if no lease comes in time: the agent goes on trying, as dhcpagent does.
                    Persist(ctx, args, r => r.Add(["create-addr", .. a]));
                    var delay = LoopSynchronizationContext.Delay(stack.Scheduler, timeout, ctx.Cancel);
                    var done = await Task.WhenAny(client!.Ready, delay);
                    // The agent keeps trying in the background, as dhcpagent does.
                    if (done != client.Ready) st = IpadmStatus.DhcpIpcTimeout;
                    else st = client.Ready.Result;
                }
                break;
            }
            case "addrconf":
                st = stack.StartAddrconf(addrObj, out var ll);
                if (st.IsOk) st = await ll!.Ready;
                break;
            default:
                ctx.Err.WriteLine($"ipadm: Invalid address type {type}");
                return 1;
        }
        if (!st.IsOk)
        {
            ctx.Err.WriteLine($"ipadm: Could not create address: {st.Message}");
            return 1;
        }
        if (type != "dhcp") Persist(ctx, args, r => r.Add(["create-addr", .. a]));
        return 0;
    }

    private static int ClassfulPrefix(IpAddress a)
    {
        uint top = a.V4Raw >> 24;
        return top < 128 ? 8 : top < 192 ? 16 : 24;
    }

    private static int DeleteAddr(ProgramContext ctx, string[] args)
    {
        if (args.Length != 1) return Usage(ctx);
        string addrObj = args[0];
        var st = ctx.Stack.DeleteAddress(addrObj);
        bool persisted = Unpersist(ctx, r => CreatesAddress(r, o => o == addrObj));
        if (!st.IsOk && !persisted)
        {
            ctx.Err.WriteLine($"ipadm: could not delete address: {st.Message}");
            return 1;
        }
        return 0;
    }

    private static int ShowAddr(ProgramContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "po:");
        if (g.Error != null) return OptionError(ctx, g, ShowAddrUse);
        bool parsable = g.Has("p");
        if (parsable && !g.Has("o"))
        {
            ctx.Err.WriteLine("ipadm: -p requires -o");
            return 1;
        }
        if (g.Operands.Count > 1) return Usage(ctx);
        string? name = g.Operands.Count == 1 ? g.Operands[0] : null;
        // do_show_addr's def_fields_str when -o is not given.
        var table = OpenTable(ctx, ShowAddrFields, g.Value("o") ?? "addrobj,type,state,addr", parsable);
        if (table == null) return 1;
        var stack = ctx.Stack;
        if (name != null && stack.FindAddressObject(name) == null)
        {
            ctx.Err.WriteLine($"ipadm: {IpStatusText.Of(IpadmStatus.NotFound)}");
            return 1;
        }
        var persistent = ctx.Persistent?.Load() ?? [];
        var rows = new List<Dictionary<string, string>>();
        foreach (bool v4 in new[] { true, false })
        {
            foreach (var a in stack.Addresses)
            {
                if (a.Address.IsV4 != v4 || (name != null && a.Name != name)) continue;
                rows.Add(new()
                {
                    ["ADDROBJ"] = a.Name,
                    ["TYPE"] = a.Type switch { AddressType.Static => "static", AddressType.Dhcp => "dhcp", _ => "addrconf" },
                    ["STATE"] = a.State switch { AddressState.Ok => "ok", AddressState.Tentative => "tentative", _ => "duplicate" },
                    // cflags_mask (Uuptd) and pflags_mask (Upd): every address here is up and none is
                    // unnumbered, private, temporary or deprecated; PERSISTENT is blank ("---") for an
                    // address no create-addr record brings back.
                    ["CURRENT"] = "U----",
                    ["PERSISTENT"] = persistent.Exists(r => CreatesAddress(r, o => o == a.Name)) ? "U--" : "---",
                    ["ADDR"] = $"{a.Address}/{a.PrefixLength}",
                });
            }
        }
        ctx.Out.Write(table.Format(rows, parsable));
        return 0;
    }

    private static int SetProp(ProgramContext ctx, string[] args)
    {
        var a = StripTemporary(args);
        if (a.Count != 3 || a[0] != "-p") return Usage(ctx);
        string[] kv = a[1].Split('=', 2);
        string proto = a[2];
        if (kv.Length != 2 || proto is not ("ipv4" or "ipv6" or "ip"))
        {
            ctx.Err.WriteLine($"ipadm: set-prop: {a[1]}: {IpStatusText.Of(IpadmStatus.InvalidArg)}");
            return 1;
        }
        var stack = ctx.Stack;
        void Remember() => Persist(ctx, args, r =>
        {
            r.RemoveAll(x => x is ["set-prop", "-p", var p, var q] && p.Split('=')[0] == kv[0] && q == proto);
            r.Add(["set-prop", "-p", a[1], proto]);
        });
        switch (kv[0])
        {
            case "forwarding" when kv[1] is "on" or "off":
                if (proto == "ipv6") stack.ForwardingV6 = kv[1] == "on"; else stack.ForwardingV4 = kv[1] == "on";
                Remember();
                return 0;
            case "ttl" or "hoplimit" when byte.TryParse(kv[1], NumberStyles.None, CultureInfo.InvariantCulture, out byte t) && t > 0:
                stack.DefaultTtl = t;
                Remember();
                return 0;
            case "forwarding" or "ttl" or "hoplimit":
                ctx.Err.WriteLine($"ipadm: set-prop: {kv[0]}: Invalid argument provided");
                return 1;
            default:
                ctx.Err.WriteLine($"ipadm: set-prop: {kv[0]}: Unknown property");
                return 1;
        }
    }

    private static int ShowProp(ProgramContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, ":p:co:");
        if (g.Error != null) return OptionError(ctx, g, ShowPropUse);
        if (g.Values("p").Count > 1)
        {
            ctx.Err.WriteLine("ipadm: -p must be specified once only");
            return 1;
        }
        if (g.Operands.Count > 1) return Usage(ctx);
        string? prop = g.Value("p"), proto = g.Operands.Count == 1 ? g.Operands[0] : null;
        bool parsable = g.Has("c");
        // ipadm.c opens this table with OFMT_WRAP, which folds a value wider than its field onto
        // continuation lines; no value here reaches its field's width, so there is nothing to fold.
        var table = OpenTable(ctx, ShowPropFields, g.Value("o"), parsable);
        if (table == null) return 1;
        var s = ctx.Stack;
        var rows = new List<(string Proto, string Prop, string Cur, string Def, string Pos)>
        {
            ("ipv4", "forwarding", s.ForwardingV4 ? "on" : "off", "off", "on,off"),
            ("ipv4", "ttl", s.DefaultTtl.ToString(CultureInfo.InvariantCulture), "255", "1-255"),
            ("ipv6", "forwarding", s.ForwardingV6 ? "on" : "off", "off", "on,off"),
            ("ipv6", "hoplimit", s.DefaultTtl.ToString(CultureInfo.InvariantCulture), "255", "1-255"),
        };
        var persistent = ctx.Persistent?.Load() ?? []; // read once for every row
        var shown = new List<Dictionary<string, string>>();
        foreach (var r in rows)
        {
            if ((prop != null && r.Prop != prop) || (proto != null && r.Proto != proto)) continue;
            shown.Add(new()
            {
                ["PROTO"] = r.Proto, ["PROPERTY"] = r.Prop, ["PERM"] = "rw", ["CURRENT"] = r.Cur,
                ["PERSISTENT"] = PersistentValue(persistent, r.Proto, r.Prop), ["DEFAULT"] = r.Def, ["POSSIBLE"] = r.Pos,
            });
        }
        if (shown.Count == 0)
        {
            ctx.Err.WriteLine($"ipadm: show-prop: {prop ?? proto}: Unknown property");
            return 1;
        }
        ctx.Out.Write(table.Format(shown, parsable));
        return 0;
    }

    /// <summary>show-prop's PERSISTENT column: the value a set-prop without -t recorded, else empty
    /// (which libofmt prints as "--").</summary>
    private static string PersistentValue(List<string[]> persistent, string proto, string prop)
    {
        string? value = null;
        foreach (var r in persistent)
        {
            if (r is not ["set-prop", "-p", var p, var q]) continue;
            string[] kv = p.Split('=', 2);
            bool sameProto = q == proto || (q == "ip" && prop == "forwarding");
            if (kv.Length == 2 && sameProto && (kv[0] == prop || (kv[0] is "ttl" or "hoplimit" && prop is "ttl" or "hoplimit"))) value = kv[1];
        }
        return value ?? "";
    }

    private static int SetIfProp(ProgramContext ctx, string[] args)
    {
        var a = StripTemporary(args);
        string? prop = null, ifName = null;
        for (int i = 0; i < a.Count; i++)
        {
            if (a[i] == "-p" && i + 1 < a.Count) prop = a[++i];
            else if (a[i] == "-m" && i + 1 < a.Count) i++;
            else if (!a[i].StartsWith('-')) ifName = a[i];
            else return Usage(ctx);
        }
        if (prop == null || ifName == null) return Usage(ctx);
        string[] kv = prop.Split('=', 2);
        if (kv.Length != 2 || kv[0] != "mtu" || !int.TryParse(kv[1], NumberStyles.None, CultureInfo.InvariantCulture, out int mtu))
        {
            ctx.Err.WriteLine($"ipadm: set-ifprop: {prop}: {IpStatusText.Of(IpadmStatus.InvalidArg)}");
            return 1;
        }
        var st = ctx.Stack.SetInterfaceMtu(ifName, mtu);
        if (!st.IsOk)
        {
            ctx.Err.WriteLine($"ipadm: set-ifprop: mtu: {st.Message}");
            return 1;
        }
        Persist(ctx, args, r =>
        {
            r.RemoveAll(x => x.Length > 1 && x[0] == "set-ifprop" && x[^1] == ifName);
            r.Add(["set-ifprop", .. a]);
        });
        return 0;
    }
}
