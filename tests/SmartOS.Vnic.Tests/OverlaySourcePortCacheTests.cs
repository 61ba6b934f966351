using System.Buffers.Binary;
using SmartOS.Kernel.Wire;
using SmartOS.Vnic;

namespace SmartOS.Vnic.Tests;

/// <summary>
/// The overlay's last source port (vnic/Overlay.cs rule 2, VxlanSourcePortCache): for every frame it
/// answers what VxlanHeader.SourcePort hashes, hashing again only when the hashed bytes, or which
/// bytes are hashed, change.
/// </summary>
public class OverlaySourcePortCacheTests
{
    private static byte[] Eth(int length, ushort type, bool tagged = false)
    {
        var f = new byte[length];
        for (int i = 0; i < 12; i++) f[i] = (byte)(0x20 + i);
        int t = 12;
        if (tagged)
        {
            f[12] = 0x81;
            f[13] = 0x00;
            f[14] = 0x00;
            f[15] = 0x05;
            t = 16;
        }
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(t), type);
        return f;
    }

    /// <summary>An IPv4/UDP frame from 10.0.0.a port pa to 10.0.0.b port pb; id varies per frame.</summary>
    private static byte[] Udp(byte a, byte b, ushort pa, ushort pb, ushort id, bool tagged = false, int ihl = 5)
    {
        var f = Eth(200, 0x0800, tagged);
        int l3 = tagged ? 18 : 14;
        f[l3] = (byte)(0x40 | ihl);
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(l3 + 4), id);
        f[l3 + 9] = 17;
        f[l3 + 12] = 10; f[l3 + 15] = a;
        f[l3 + 16] = 10; f[l3 + 19] = b;
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(l3 + ihl * 4), pa);
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(l3 + ihl * 4 + 2), pb);
        for (int i = l3 + ihl * 4 + 4; i < f.Length; i++) f[i] = (byte)(id + i);
        return f;
    }

    [Test]
    public void Every_frame_gets_the_port_the_hash_gives_and_only_a_change_in_the_hashed_bytes_hashes_again()
    {
        var cache = new VxlanSourcePortCache();
        var frames = new List<(byte[] Frame, bool Hit)>
        {
            (Udp(1, 2, 1000, 2000, id: 1), false),
            (Udp(1, 2, 1000, 2000, id: 2), true),   // only the IP id and payload differ: not hashed
            (Udp(1, 3, 1000, 2000, id: 3), false),  // another destination address
            (Udp(1, 3, 1000, 2001, id: 4), false),  // another destination port
            (Udp(1, 3, 1000, 2001, id: 5, ihl: 6), true), // options: the same ports read 4 bytes later hash the same
            (Udp(1, 3, 1000, 2002, id: 5, ihl: 6), false),
            (Udp(1, 3, 1000, 2001, id: 5, tagged: true), false), // a tag: other Ethernet bytes
            (Udp(1, 3, 1000, 2001, id: 6, tagged: true), true),
            (Eth(60, 0x88B5), false),
            (Eth(60, 0x88B5), true),
            (Eth(60, 0x86DD), false),               // the type is hashed
        };
        // The same Ethernet header and address bytes, but too short for the hash to read the ports,
        // or the addresses: which bytes are hashed changed.
        var full = Udp(1, 2, 1000, 2000, id: 1);
        var options = Udp(1, 2, 1000, 2000, id: 1, ihl: 6);
        frames.Add((full, false));
        frames.Add((full[..(14 + 22)], false));   // Ethernet only
        frames.Add((full[..(14 + 20)], true));    // Ethernet only, the same bytes
        frames.Add((options[..(14 + 24)], false)); // addresses, no ports
        frames.Add((options[..(14 + 26)], true));
        frames.Add((options, false));             // and ports
        frames.Add((full[..13], false));          // shorter than an Ethernet header: hashed, not kept
        frames.Add((full, true));
        for (int i = 0; i < frames.Count; i++)
        {
            var (frame, hit) = frames[i];
            long hits = cache.Hits;
            Assert.That(cache.Get(frame), Is.EqualTo(VxlanHeader.SourcePort(frame)), $"frame {i}");
            if (frame.Length >= 14) Assert.That(cache.Hits - hits, Is.EqualTo(hit ? 1 : 0), $"frame {i}: {(hit ? "a hit" : "a miss")}");
        }
    }

    [Test]
    public void Two_flows_in_turn_each_keep_their_own_port()
    {
        var cache = new VxlanSourcePortCache();
        var x = Udp(1, 2, 1000, 2000, id: 1);
        var y = Udp(1, 2, 1001, 2000, id: 1);
        ushort px = VxlanHeader.SourcePort(x), py = VxlanHeader.SourcePort(y);
        Assume.That(px, Is.Not.EqualTo(py));
        for (int i = 0; i < 4; i++)
        {
            Assert.That(cache.Get(x), Is.EqualTo(px));
            Assert.That(cache.Get(y), Is.EqualTo(py));
        }
    }
}
