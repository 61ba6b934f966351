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
        ctx.Err.WriteLine("\tcreate-if\t[-t] <interface>\n\tdelete-if\t<interface>\n\tshow-if\t\t[<interface>]");
        ctx.Err.WriteLine("\tcreate-addr\t[-t] -T static [-d] -a{local|remote}=addr[/prefixlen]\n\t\t\t<addrobj>\n\tcreate-addr\t[-t] -T dhcp [-w <seconds> | forever] <addrobj>\n\tcreate-addr\t[-t] -T addrconf <addrobj>");
        ctx.Err.WriteLine("\tdelete-addr\t<addrobj>\n\tshow-addr\t[<addrobj>]\n\tset-prop\t[-t] -p <prop>=<value> <protocol>\n\tshow-prop\t[-p <prop>] [<protocol>]\n\tset-ifprop\t[-t] -p <prop>=<value> -m <protocol> <interface>");
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
        if (ctx.Stack.FindInterface(name) != null) st = IpStatus.Fail(IpStatus.IfExists);
        else
        {
            var client = ctx.OpenLink?.Invoke(name);
            st = client == null ? IpStatus.Fail(IpStatus.NoLink) : ctx.Stack.CreateInterface(name, client);
        }
        if (!st.IsOk)
        {
            ctx.Err.WriteLine($"ipadm: Could not create {name} : {st.Error}");
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
            ctx.Err.WriteLine($"ipadm: Could not delete {name} : {st.Error}");
            return 1;
        }
        return 0;
    }

    private static int ShowIf(ProgramContext ctx, string[] args)
    {
        if (args.Length > 1) return Usage(ctx);
        if (args.Length == 1 && ctx.Stack.FindInterface(args[0]) == null)
        {
            ctx.Err.WriteLine($"ipadm: Could not get interface(s): {IpStatus.NoSuchInterface}");
            return 1;
        }
        ctx.Out.WriteLine($"{"IFNAME",-10} {"STATE",-8} {"CURRENT",-12} PERSISTENT");
        foreach (var i in ctx.Stack.Interfaces)
        {
            if (args.Length == 1 && i.Name != args[0]) continue;
            string current = (i.IsLoopback ? "-m-v------" : "bm--------") + "46";
            string state = i.IsLoopback || i.Client!.IsOpen ? "ok" : "down";
            ctx.Out.WriteLine($"{i.Name,-10} {state,-8} {current,-12} ---");
        }
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
                    ctx.Err.WriteLine($"ipadm: Could not create address: {IpStatus.BadAddress}");
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
                    if (done != client.Ready) st = IpStatus.Fail(IpStatus.DhcpTimeout);
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
            ctx.Err.WriteLine($"ipadm: Could not create address: {st.Error}");
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
            ctx.Err.WriteLine($"ipadm: could not delete address: {st.Error}");
            return 1;
        }
        return 0;
    }

    private static int ShowAddr(ProgramContext ctx, string[] args)
    {
        if (args.Length > 1) return Usage(ctx);
        var stack = ctx.Stack;
        if (args.Length == 1 && stack.FindAddressObject(args[0]) == null)
        {
            ctx.Err.WriteLine($"ipadm: {IpStatus.NotFound}");
            return 1;
        }
        ctx.Out.WriteLine($"{"ADDROBJ",-17} {"TYPE",-8} {"STATE",-12} ADDR");
        foreach (bool v4 in new[] { true, false })
        {
            foreach (var a in stack.Addresses)
            {
                if (a.Address.IsV4 != v4 || (args.Length == 1 && a.Name != args[0])) continue;
                string type = a.Type switch { AddressType.Static => "static", AddressType.Dhcp => "dhcp", _ => "addrconf" };
                string state = a.State switch { AddressState.Ok => "ok", AddressState.Tentative => "tentative", _ => "duplicate" };
                ctx.Out.WriteLine($"{a.Name,-17} {type,-8} {state,-12} {a.Address}/{a.PrefixLength}");
            }
        }
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
            ctx.Err.WriteLine($"ipadm: set-prop: {a[1]}: {IpStatus.InvalidArg}");
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
        string? prop = null, proto = null;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "-p" && i + 1 < args.Length) prop = args[++i];
            else if (!args[i].StartsWith('-')) proto = args[i];
            else return Usage(ctx);
        }
        var s = ctx.Stack;
        ctx.Out.WriteLine($"{"PROTO",-5} {"PROPERTY",-21} {"PERM",-4} {"CURRENT",-12} {"PERSISTENT",-12} {"DEFAULT",-12} POSSIBLE");
        var rows = new List<(string Proto, string Prop, string Cur, string Def, string Pos)>
        {
            ("ipv4", "forwarding", s.ForwardingV4 ? "on" : "off", "off", "on,off"),
            ("ipv4", "ttl", s.DefaultTtl.ToString(CultureInfo.InvariantCulture), "255", "1-255"),
            ("ipv6", "forwarding", s.ForwardingV6 ? "on" : "off", "off", "on,off"),
            ("ipv6", "hoplimit", s.DefaultTtl.ToString(CultureInfo.InvariantCulture), "255", "1-255"),
        };
        var persistent = ctx.Persistent?.Load() ?? []; // read once for every row
        bool any = false;
        foreach (var r in rows)
        {
            if ((prop != null && r.Prop != prop) || (proto != null && r.Proto != proto)) continue;
            any = true;
            ctx.Out.WriteLine($"{r.Proto,-5} {r.Prop,-21} {"rw",-4} {r.Cur,-12} {PersistentValue(persistent, r.Proto, r.Prop),-12} {r.Def,-12} {r.Pos}");
        }
        if (!any)
        {
            ctx.Err.WriteLine($"ipadm: show-prop: {prop ?? proto}: Unknown property");
            return 1;
        }
        return 0;
    }

    /// <summary>show-prop's PERSISTENT column: the value a set-prop without -t recorded, else "--".</summary>
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
        return value ?? "--";
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
            ctx.Err.WriteLine($"ipadm: set-ifprop: {prop}: {IpStatus.InvalidArg}");
            return 1;
        }
        var st = ctx.Stack.SetInterfaceMtu(ifName, mtu);
        if (!st.IsOk)
        {
            ctx.Err.WriteLine($"ipadm: set-ifprop: mtu: {st.Error}");
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
