namespace SmartOS.Kernel.Tests;

public class TimeTests
{
    [TestCase("10", 10 * Time.Second)]
    [TestCase("10s", 10 * Time.Second)]
    [TestCase("250ms", 250 * Time.Millisecond)]
    [TestCase("50us", 50 * Time.Microsecond)]
    [TestCase("20ns", 20L)]
    [TestCase("1.5s", 1_500_000_000L)]
    [TestCase("2m", 120 * Time.Second)]
    [TestCase("1h", 3600 * Time.Second)]
    [TestCase(" 3ms ", 3 * Time.Millisecond)]
    [TestCase("0", 0L)]
    [TestCase("0.000001ms", 1L)]
    public void Duration_parses(string text, long expected)
    {
        bool ok = Time.TryParseDuration(text, out long ns);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ok, Is.True);
            Assert.That(ns, Is.EqualTo(expected));
        }
    }

    [TestCase("")]
    [TestCase("   ")]
    [TestCase("s")]
    [TestCase("ms")]
    [TestCase("-5s")]
    [TestCase("5x")]
    [TestCase("1e3")]
    [TestCase("ten")]
    [TestCase("5 s")]
    [TestCase("1,5s")]
    [TestCase("99999999999999999999h")]
    [TestCase("79228162514264337593543950335h")]
    [TestCase("9999999999999999999")]
    public void Bad_duration_is_rejected_without_throwing(string text)
    {
        bool ok = Time.TryParseDuration(text, out long ns);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ok, Is.False);
            Assert.That(ns, Is.Zero);
        }
    }

    [TestCase(0L, "0.00000")]
    [TestCase(1_234_567_890L, "1.23457")]
    [TestCase(12_000L, "0.00001")]
    public void Seconds_format_with_five_decimals(long ns, string expected)
    {
        Assert.That(Time.FormatSeconds(ns), Is.EqualTo(expected));
    }
}
