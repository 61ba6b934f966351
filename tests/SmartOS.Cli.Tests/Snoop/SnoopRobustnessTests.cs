using SmartOS.Cli.Snoop;

namespace SmartOS.Cli.Tests.Snoop;

public class SnoopRobustnessTests
{
    private static readonly string[] s_filters =
    [
        "udp port 9", "tcp or icmp6", "host 192.0.2.1", "net 2001:db8::/32", "vlan 5 and arp",
        "ether 2:8:20:a:b:c", "not broadcast", "multicast or greater 100", "src port 80", "ip6 and dst host 2001:db8::2",
    ];

    /// <summary>
    /// Every valid frame, cut at every length and with random bytes overwritten, plus random
    /// junk: nothing throws, and every frame gets a summary.
    /// </summary>
    [Test]
    public void Random_and_truncated_frames_never_make_snoop_throw()
    {
        var filters = s_filters.Select(f =>
        {
            SnoopFilter.TryParse([f], out var parsed, out _);
            return parsed!;
        }).ToArray();
        var random = new Random(1234);
        var frames = new List<byte[]>();
        foreach (byte[] valid in TestFrames.All().Concat(SnoopApplicationTests.Frames()))
        {
            for (int cut = 0; cut <= valid.Length; cut++) frames.Add(valid[..cut]);
            for (int i = 0; i < 200; i++)
            {
                byte[] mangled = (byte[])valid.Clone();
                for (int k = random.Next(1, 4); k > 0; k--) mangled[random.Next(mangled.Length)] = (byte)random.Next(256);
                frames.Add(mangled[..random.Next(mangled.Length + 1)]);
            }
        }
        for (int i = 0; i < 1000; i++)
        {
            byte[] junk = new byte[random.Next(0, 120)];
            random.NextBytes(junk);
            // Steer some of the junk into the interesting EtherTypes.
            if (junk.Length >= 14 && i % 2 == 0)
            {
                ushort[] types = [0x0800, 0x86DD, 0x0806, 0x8100, 0x8035];
                ushort t = types[random.Next(types.Length)];
                junk[12] = (byte)(t >> 8);
                junk[13] = (byte)t;
                if (junk.Length >= 15) junk[14] = (byte)((t == 0x86DD ? 0x60 : 0x45) | (junk[14] & 0x0F));
            }
            frames.Add(junk);
        }

        int n = 0;
        Assert.That(() =>
        {
            foreach (byte[] frame in frames)
            {
                foreach (var filter in filters) filter.Matches(frame);
                Assert.That(SnoopFormat.Summary(frame), Is.Not.Empty);
                SnoopFormat.VerboseSummary(frame);
                SnoopFormat.Verbose(frame, ++n, n * 1000L);
            }
        }, Throws.Nothing);
        Assert.That(n, Is.GreaterThan(3000));
    }
}
