using System.Text;

namespace SmartOS.Cli.Tests.Streams;

/// <summary>OutputCapture keeps a command's output; with a limit (the dashboard's console) it keeps
/// what fits, says it overflowed, calls its overflow action once and drops later writes.</summary>
public class OutputCaptureTests
{
    [Test]
    public void Without_a_limit_every_byte_is_kept()
    {
        var capture = new OutputCapture();
        var data = new byte[256];
        for (int i = 0; i < data.Length; i++) data[i] = (byte)i;
        capture.Write(data);
        capture.Write(data.AsSpan(0, 10));
        Assert.That(capture.ToArray(), Is.EqualTo(data.Concat(data.Take(10)).ToArray()));
        Assert.That(capture.Overflowed, Is.False);
    }

    [Test]
    public void A_write_beyond_the_limit_keeps_what_fits_and_calls_the_overflow_action_once()
    {
        int calls = 0;
        var capture = new OutputCapture(limit: 8, overflow: () => calls++);
        capture.Write(Encoding.ASCII.GetBytes("abcde"));
        Assert.That(capture.Overflowed, Is.False);
        capture.Write(Encoding.ASCII.GetBytes("fghij"));
        capture.Write(Encoding.ASCII.GetBytes("klm"));
        Assert.Multiple(() =>
        {
            Assert.That(capture.ToString(), Is.EqualTo("abcdefgh"));
            Assert.That(capture.Overflowed, Is.True);
            Assert.That(calls, Is.EqualTo(1));
            Assert.That(capture.Length, Is.EqualTo(8));
        });
    }

    [Test]
    public void A_write_that_exactly_fills_the_limit_is_not_an_overflow()
    {
        int calls = 0;
        var capture = new OutputCapture(limit: 4, overflow: () => calls++);
        capture.Write(Encoding.ASCII.GetBytes("abcd"));
        Assert.That((capture.Overflowed, calls, capture.ToString()), Is.EqualTo((false, 0, "abcd")));
    }
}
