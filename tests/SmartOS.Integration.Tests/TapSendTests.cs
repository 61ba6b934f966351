using System.Buffers.Binary;
using SmartOS.Kernel;
using SmartOS.Vnic;

namespace SmartOS.Integration.Tests;

/// <summary>
/// Frames towards Linux are queued on the loop and written when the pass is over (TapDevice.cs rule
/// 10): a pure ACK that a later one of the same flow in the queue says all of is not written; data,
/// duplicates, ACKs with SACK and other flows are, each once. What Linux got is read from the TAP's
/// own counter (rx_packets in its namespace). Run only as root with /dev/net/tun and ip(8);
/// otherwise ignored, with the reason.
/// </summary>
[NonParallelizable]
public class TapSendTests
{
    [Test]
    public void A_pure_ACK_superseded_by_a_later_one_in_the_same_pass_is_not_written()
    {
        string? missing = LinuxNet.MissingPrerequisite();
        if (missing != null) Assert.Ignore(missing);

        using var ns = new NetNs();
        string name = "sms" + LinuxNet.Suffix();
        using var device = TapDevice.TryOpenIn("/run/netns/" + ns.Name, name, out string? error);
        Assert.That(device, Is.Not.Null, error);
        LinuxNet.Must("ip", "-n", ns.Name, "link", "set", name, "up");

        var scheduler = new Scheduler();
        using var driver = new RealTimeDriver(scheduler);
        driver.Start("tap-send-test");
        int failed = 0;
        device!.Start(driver, (frame, gso, csum) => { }, () => { }, n => { }, n => { }, null, n => failed += n);
        var pool = new PacketPool();
        long before = RxPackets(ns, name);

        var counts = driver.InvokeAsync(() =>
        {
            // One pass: eight frames sent, written when it is over.
            Send(device, pool, ack: 1000, window: 100);                 // superseded by the 4th
            Send(device, pool, ack: 2000, window: 50);                  // superseded by the 4th
            Send(device, pool, ack: 2000, window: 50, payload: 10);     // data: written
            Send(device, pool, ack: 2000, window: 300);                 // written (the next is its duplicate)
            Send(device, pool, ack: 2000, window: 300);                 // a duplicate: written
            Send(device, pool, ack: 500, window: 10, port: 5202);       // another flow: written
            Send(device, pool, ack: 1500, window: 10, sack: true);      // SACK: written, and not superseded by...
            Send(device, pool, ack: 2000, window: 400, sack: true);     // ...this one, which is written too
            return (device.AcksSuperseded, pool.Outstanding);
        }).Result;
        // The queue is written when the loop is about to sleep; work posted before then (this look,
        // when the test's thread is quick or the loop slow) still runs in the same pass, before the
        // write. So look again, a bounded number of times, until the pass is over.
        var after = driver.InvokeAsync(() => (device.AcksSuperseded, device.WriteErrors, pool.Outstanding)).Result;
        for (int i = 0; i < 100 && after.Outstanding != 0; i++)
        {
            Thread.Sleep(20);
            after = driver.InvokeAsync(() => (device.AcksSuperseded, device.WriteErrors, pool.Outstanding)).Result;
        }

        long written = 0;
        for (int i = 0; i < 50 && (written = RxPackets(ns, name) - before) < 6; i++) Thread.Sleep(100);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(counts.AcksSuperseded, Is.Zero, "nothing is written or left out before the pass is over");
            Assert.That(counts.Outstanding, Is.EqualTo(8), "the queued frames are held until written");
            Assert.That(after.AcksSuperseded, Is.EqualTo(2));
            Assert.That(after.WriteErrors, Is.Zero);
            Assert.That(failed, Is.Zero);
            Assert.That(after.Outstanding, Is.Zero, "every frame freed once written or left out");
            Assert.That(written, Is.EqualTo(6), "Linux's rx_packets for the TAP");
        }
    }

    private static long RxPackets(NetNs ns, string name)
        => long.Parse(ns.Exec("cat", $"/sys/class/net/{name}/statistics/rx_packets").Out.Trim(), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>An Ethernet/IPv4/TCP frame from 198.18.0.2:5201 (or <paramref name="port"/>) to
    /// 198.18.0.1:40000 with only ACK set and timestamps, and a SACK block when <paramref name="sack"/>.</summary>
    private static void Send(TapDevice device, PacketPool pool, uint ack, ushort window, int payload = 0, ushort port = 5201, bool sack = false)
    {
        int options = sack ? 12 + 12 : 12;
        int tcpLength = 20 + options + payload;
        var p = pool.Rent(14 + 20 + tcpLength)!;
        var f = p.Data;
        f.Clear();
        byte[] dst = [0x02, 0, 0, 0, 0, 0x01], src = [0x02, 0, 0, 0, 0, 0x02];
        dst.CopyTo(f);
        src.CopyTo(f[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(f[12..], 0x0800);
        var ip = f[14..];
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(20 + tcpLength));
        ip[6] = 0x40; // DF
        ip[8] = 64;
        ip[9] = 6;
        byte[] from = [198, 18, 0, 2], to = [198, 18, 0, 1];
        from.CopyTo(ip[12..]);
        to.CopyTo(ip[16..]);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], SmartOS.Kernel.Wire.Checksum.Compute(ip[..20]));
        var tcp = ip[20..];
        BinaryPrimitives.WriteUInt16BigEndian(tcp, port);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], 40000);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], 7);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[8..], ack);
        tcp[12] = (byte)((20 + options) / 4 << 4);
        tcp[13] = payload > 0 ? (byte)0x18 : (byte)0x10;
        BinaryPrimitives.WriteUInt16BigEndian(tcp[14..], window);
        tcp[20] = 1; tcp[21] = 1; tcp[22] = 8; tcp[23] = 10; // NOP NOP timestamps
        if (sack)
        {
            tcp[32] = 1; tcp[33] = 1; tcp[34] = 5; tcp[35] = 10; // NOP NOP SACK, one block
            BinaryPrimitives.WriteUInt32BigEndian(tcp[36..], ack + 1000);
            BinaryPrimitives.WriteUInt32BigEndian(tcp[40..], ack + 2000);
        }
        device.Send(p);
    }
}
