using System.Buffers.Binary;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic.Tests;

/// <summary>A MAC client's receive side that records what it is handed and frees it (it owns it).</summary>
internal sealed class Recorder : IMacReceiver
{
    public Recorder(MacClient client) { Client = client; }

    public MacClient Client { get; }
    public List<Received> Frames { get; } = [];

    public void Receive(MacClient client, Packet packet)
    {
        Frames.Add(new Received(packet.Data.ToArray(), packet.Vid, client.Scheduler.Now));
        packet.Free();
    }

    /// <summary>Sends a frame as this client.</summary>
    public void Send(byte[] frame) => Client.Transmit(Client.Pool.Rent(frame)!);
}

internal readonly record struct Received(byte[] Frame, ushort Vid, long Time)
{
    public MacAddress Destination => MacAddress.Read(Frame);
    public bool IsTagged => Frame.Length >= 14 && BinaryPrimitives.ReadUInt16BigEndian(Frame.AsSpan(12)) == EtherType.Vlan;
}

/// <summary>A capture tap that keeps copies of the frames it sees.</summary>
internal sealed class TapRecorder : ICaptureTap
{
    public List<(byte[] Frame, TapDirection Direction)> Frames { get; } = [];

    public void Capture(Datalink link, ReadOnlySpan<byte> frame, long time, TapDirection direction)
        => Frames.Add((frame.ToArray(), direction));
}

internal static class TestNet
{
    public static MacLayer Host(Scheduler scheduler, string name = "h1", ulong seed = 1, int nics = 1)
    {
        var mac = new MacLayer(name, scheduler, new PacketPool(), new KstatRegistry(), new HostRandom(seed));
        for (int i = 0; i < nics; i++) mac.AddPhys($"e1000g{i}");
        return mac;
    }

    public static PhysLink Phys(this MacLayer mac, string name = "e1000g0") => (PhysLink)mac.Find(name)!;

    public static Recorder Open(PortLink link)
    {
        var client = link.OpenClient("test")!;
        var r = new Recorder(client);
        client.Receiver = r;
        return r;
    }

    public static VnicLink Vnic(this MacLayer mac, string name, string over, ushort vid = 0, MacAddress? fixedMac = null, bool temporary = true)
    {
        var req = fixedMac is MacAddress m ? new MacLayer.MacRequest(MacAddressType.Fixed, m) : new MacLayer.MacRequest(MacAddressType.Auto);
        var s = mac.CreateVnic(name, over, req, vid, temporary, out var v);
        Assert.That(s.Code, Is.EqualTo(DladmStatus.Ok), $"create-vnic {name}");
        return v!;
    }

    public static MacAddress Mac(string text)
    {
        Assert.That(MacAddress.TryParse(text, out var m), Is.True, text);
        return m;
    }

    /// <summary>An Ethernet frame of <paramref name="length"/> bytes (header included), tagged when vid is given.</summary>
    public static byte[] Frame(MacAddress dst, MacAddress src, int length = 60, ushort? vid = null, byte pcp = 0)
    {
        var f = new byte[length];
        dst.Write(f);
        src.Write(f.AsSpan(6));
        int at = 12;
        if (vid is ushort v)
        {
            BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), EtherType.Vlan);
            BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(14), (ushort)((pcp << 13) | v));
            at = 16;
        }
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(at), 0x88B5); // IEEE local experimental EtherType
        for (int i = at + 2; i < f.Length; i++) f[i] = (byte)i;
        return f;
    }

    public static long Stat(this MacLayer mac, string link, string statistic) => mac.Kstats.Read("link", link, statistic) ?? -1;
}
