using System.Text;
using SmartOS.Kernel;

namespace SmartOS.Storage.Tests;

public class ChecksumTests
{
    [Test]
    public void Fletcher4_of_nothing_is_zero()
    {
        Assert.That(Checksum.Fletcher4([]), Is.EqualTo(new BlockChecksum(0, 0, 0, 0)));
    }

    [Test]
    public void Fletcher4_runs_four_sums_over_little_endian_words()
    {
        // Words 1, 2, 3, 4: a = 1+2+3+4, b = 1+3+6+10, c = 1+4+10+20, d = 1+5+15+35.
        byte[] data = [1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0];
        Assert.That(Checksum.Fletcher4(data), Is.EqualTo(new BlockChecksum(10, 20, 35, 56)));
    }

    [Test]
    public void Fletcher4_reads_words_little_endian()
    {
        byte[] data = [0x01, 0x02, 0x03, 0x04];
        Assert.That(Checksum.Fletcher4(data), Is.EqualTo(new BlockChecksum(0x04030201, 0x04030201, 0x04030201, 0x04030201)));
    }

    [Test]
    public void Fletcher4_sums_wrap_modulo_two_to_the_64()
    {
        // 128 KiB of 0xff: n = 32768 words of w = 2^32-1; a = nw, b = w n(n+1)/2, c = w n(n+1)(n+2)/6,
        // d = w n(n+1)(n+2)(n+3)/24, all modulo 2^64 (b, c and d overflow).
        var data = new byte[128 * 1024];
        Array.Fill(data, (byte)0xff);
        ulong n = 32768, w = 0xffffffff;
        var expected = new BlockChecksum(n * w, w * (n * (n + 1) / 2), w * (n * (n + 1) * (n + 2) / 6),
                                         w * (n * (n + 1) * (n + 2) * (n + 3) / 24));
        Assert.That(Checksum.Fletcher4(data), Is.EqualTo(expected));
    }

    [TestCase(4)]
    [TestCase(12)]
    [TestCase(16)]
    [TestCase(20)]
    [TestCase(512)]
    [TestCase(131072)]
    [TestCase(131076)]
    public void Fletcher4_four_lanes_equal_the_serial_definition(int length)
    {
        var data = new byte[length];
        new HostRandom((ulong)length).NextBytes(data);
        Assert.That(Checksum.Fletcher4(data), Is.EqualTo(Checksum.Fletcher4Serial(data, 0, 0, 0, 0)));
    }

    [Test]
    public void Sha256_of_abc_is_the_fips_180_value()
    {
        var sum = Checksum.Compute(ChecksumKind.Sha256, Encoding.ASCII.GetBytes("abc"));
        Assert.That(Hex(sum), Is.EqualTo("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    }

    [Test]
    public void Blake3_of_abc_is_the_reference_value()
    {
        var sum = Checksum.Compute(ChecksumKind.Blake3, Encoding.ASCII.GetBytes("abc"));
        Assert.That(Hex(sum), Is.EqualTo("6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"));
    }

    [Test]
    public void Blake3_of_nothing_is_the_reference_value()
    {
        Assert.That(Hex(Checksum.Compute(ChecksumKind.Blake3, [])),
                    Is.EqualTo("af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"));
    }

    [TestCase("on", ChecksumKind.Fletcher4)]
    [TestCase("fletcher4", ChecksumKind.Fletcher4)]
    [TestCase("sha256", ChecksumKind.Sha256)]
    [TestCase("blake3", ChecksumKind.Blake3)]
    public void Checksum_names_parse_as_zfs_spells_them(string name, ChecksumKind kind)
    {
        Assert.That(Checksum.TryParse(name, out var parsed), Is.True);
        Assert.That(parsed, Is.EqualTo(kind));
    }

    [Test]
    public void An_unknown_checksum_name_is_refused()
    {
        Assert.That(Checksum.TryParse("md5", out _), Is.False);
    }

    private static string Hex(BlockChecksum sum)
    {
        var bytes = new byte[32];
        sum.WriteTo(bytes);
        return Convert.ToHexStringLower(bytes);
    }
}
