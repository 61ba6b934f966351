using SmartOS.Cli.Snoop;
using SmartOS.Testing;
using static SmartOS.Cli.Tests.Snoop.TestFrames;

namespace SmartOS.Cli.Tests.Snoop;

/// <summary>snoop's filter language; the tables are in Data/snoop-filters.txt and
/// Data/snoop-filter-errors.txt.</summary>
public class SnoopFilterTests
{
    private static SnoopFilter Parse(string expression)
    {
        bool ok = SnoopFilter.TryParse([expression], out var filter, out string error);
        Assert.That(ok, Is.True, $"'{expression}' should parse, got: {error}");
        return filter!;
    }

    private static bool Match(string expression, byte[] frame) => Parse(expression).Matches(frame);

    [Test]
    public void Filter_with_no_words_matches_everything()
    {
        Assert.That(SnoopFilter.TryParse([], out var filter, out _), Is.True);
        Assert.That(filter!.Matches(Unknown()), Is.True);
    }

    /// <summary>The frames snoop-filters.txt names in its first field.</summary>
    private static byte[] Frame(DataCase c) => c[0] switch
    {
        "udp" => Udp(1234, 9),
        "udp-vlan5" => Udp(1234, 9, vid: 5),
        "udp-vlan6" => Udp(1234, 9, vid: 6),
        "arp" => Arp(request: true),
        "arp-vlan7" => Arp(request: true, vid: 7),
        "tcp-syn" => Tcp(40000, 80, 0x02, 1),
        "icmp-echo" => IcmpEcho(request: true, 1, 0),
        "icmp6-echo" => Icmp6Echo(1, 2),
        "udp-broadcast" => Udp(68, 67, src: 0, dst: 0xFFFF_FFFF, dstMac: SmartOS.Kernel.Wire.MacAddress.Broadcast),
        "udp-multicast" => Udp(5353, 5353, dstMac: new SmartOS.Kernel.Wire.MacAddress(0x0100_5E00_00FBUL)),
        var name => c.Fail<byte[]>($"no frame named '{name}'"),
    };

    private static IEnumerable<TestCaseData> FilterCases() => DataFile.Cases("snoop-filters.txt", 3);

    [TestCaseSource(nameof(FilterCases))]
    public void Filter_expression_matches_the_frame_as_the_data_file_says(DataCase c)
    {
        byte[] frame = Frame(c);
        Assert.That(Match(c[1], frame), Is.EqualTo(c.Bool(2)), c.Where);
    }

    [Test]
    public void Filter_accepts_several_words_and_parentheses_without_spaces()
    {
        Assert.That(SnoopFilter.TryParse(["(udp", "or", "tcp)", "and", "port", "9"], out var filter, out _), Is.True);
        Assert.That(filter!.Matches(Udp(1234, 9)), Is.True);
        Assert.That(SnoopFilter.TryParse(["(udp)and(port 9)"], out var joined, out _), Is.True);
        Assert.That(joined!.Matches(Udp(1234, 9)), Is.True);
    }

    private static IEnumerable<TestCaseData> ErrorCases() => DataFile.Cases("snoop-filter-errors.txt", 2);

    [TestCaseSource(nameof(ErrorCases))]
    public void Filter_rejects_bad_expression_with_a_clear_error(DataCase c)
    {
        bool ok = SnoopFilter.TryParse([c[0]], out var filter, out string error);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ok, Is.False, c.Where);
            Assert.That(filter, Is.Null, c.Where);
            Assert.That(error, Is.EqualTo(c[1]), c.Where);
        }
    }

    [Test]
    public void Filter_matching_does_not_allocate()
    {
        var filter = Parse("(udp or tcp) and port 9 and not vlan 3 or host 2001:db8::1 or ether 2:8:20:a:b:c");
        byte[] frame = Udp(1234, 9);
        for (int i = 0; i < 100; i++) filter.Matches(frame);
        // The least of three windows: a steady allocation shows in each, a one-off of the runtime's not.
        long allocated = long.MaxValue;
        for (int window = 0; window < 3; window++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 1000; i++) filter.Matches(frame);
            allocated = Math.Min(allocated, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.That(allocated, Is.Zero);
    }
}
