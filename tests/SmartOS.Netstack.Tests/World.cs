using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Vnic;

namespace SmartOS.Netstack.Tests;

/// <summary>A virtual-time world for packet-exchange tests: one scheduler, one MAC layer per host.</summary>
internal sealed class World
{
    public readonly Scheduler Scheduler = new();
    public readonly PacketPool Pool = new();
    public readonly KstatRegistry Kstats = new();
    public readonly HostRandom Random = new(42);
    public readonly MacLayer Mac;
    public readonly LoopSynchronizationContext Loop;
    private int _vnics;
    private int _stacks;

    public World()
    {
        Mac = new MacLayer("h1", Scheduler, Pool, Kstats, Random);
        Loop = new LoopSynchronizationContext(Scheduler);
    }

    public void Stub(string name) => Assert.That(Mac.CreateEtherstub(name, temporary: true).IsOk, Is.True);

    public MacClient Vnic(string over, MacLayer? mac = null)
    {
        mac ??= Mac;
        string name = "vnic" + _vnics++;
        var st = mac.CreateVnic(name, over, new MacLayer.MacRequest(MacAddressType.Auto), 0, true, out var v);
        Assert.That(st.Code, Is.EqualTo(DladmStatus.Ok));
        return v!.OpenClient("ip")!;
    }

    /// <summary>A stack with net0 on a new VNIC over <paramref name="over"/> and an IPv4 address (DAD run to completion).</summary>
    public IpStack Stack(string over, string? cidr, MacLayer? mac = null, SmartOS.Netstack.Tcp.ITcpMemoryAccount? memory = null)
    {
        var s = new IpStack("z" + _stacks, Scheduler, Pool, Random, Kstats, _stacks, tcpMemory: memory);
        _stacks++;
        Assert.That(s.CreateInterface("net0", Vnic(over, mac)).IsOk, Is.True);
        if (cidr != null) AddAddress(s, "net0/v4", cidr);
        return s;
    }

    public IpAddressObject AddAddress(IpStack s, string addrObj, string cidr)
    {
        string[] parts = cidr.Split('/');
        Assert.That(IpAddress.TryParse(parts[0], out var a), Is.True);
        var st = s.AddAddress(addrObj, a, int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture), out var obj);
        Assert.That(st.Code, Is.EqualTo(IpadmStatus.Success));
        Run(2 * Time.Second);
        return obj!;
    }

    public void Run(long duration) => Scheduler.RunFor(duration);

    /// <summary>Runs an async body on the loop until it finishes (or the deadline passes).</summary>
    public T Await<T>(Func<Task<T>> body, long deadline = 600 * Time.Second)
    {
        var task = Loop.Start(body);
        Scheduler.RunUntil(() => task.IsCompleted, Scheduler.Now + deadline);
        Assert.That(task.IsCompleted, Is.True, "the task did not finish in virtual time");
        return task.GetAwaiter().GetResult();
    }

    public static IpAddress Ip(string s)
    {
        Assert.That(IpAddress.TryParse(s, out var a), Is.True, s);
        return a;
    }
}
