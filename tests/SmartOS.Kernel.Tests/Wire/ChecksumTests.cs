using SmartOS.Kernel.Wire;

namespace SmartOS.Kernel.Tests.Wire;

public class ChecksumTests
{
    /// <summary>RFC 1071 as written: big-endian 16-bit words, an odd last byte padded with zero.</summary>
    private static ushort Reference(ReadOnlySpan<byte> data)
    {
        ulong sum = 0;
        for (int i = 0; i < data.Length; i += 2) sum += (uint)(data[i] << 8 | (i + 1 < data.Length ? data[i + 1] : 0));
        while ((sum >> 16) != 0) sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)~sum;
    }

    [Test]
    public void The_wide_sum_agrees_with_rfc_1071_for_every_length_and_alignment()
    {
        var random = new HostRandom(7);
        var buffer = new byte[2100];
        random.NextBytes(buffer);
        for (int offset = 0; offset < 8; offset++)
        {
            for (int length = 0; length <= 2048; length += length < 300 ? 1 : 61)
            {
                var data = buffer.AsSpan(offset, length);
                Assert.That(Checksum.Compute(data), Is.EqualTo(Reference(data)), $"offset {offset}, length {length}");
            }
        }
    }

    [TestCase((byte)0x00)]
    [TestCase((byte)0xFF)]
    [TestCase((byte)0x80)]
    public void The_wide_sum_agrees_with_rfc_1071_on_uniform_data(byte value)
    {
        foreach (int length in (int[])[1, 2, 63, 64, 65, 1500, 9000, 65535])
        {
            var data = new byte[length];
            Array.Fill(data, value);
            Assert.That(Checksum.Compute(data), Is.EqualTo(Reference(data)), $"length {length}");
        }
    }
}
