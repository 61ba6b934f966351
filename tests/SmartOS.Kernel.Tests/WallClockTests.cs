using SmartOS.Kernel;

namespace SmartOS.Kernel.Tests;

public class WallClockTests
{
    [Test]
    public void The_date_is_the_epoch_plus_the_schedulers_time()
    {
        var scheduler = new Scheduler();
        var clock = new WallClock(scheduler, 1_399_400_962_000_000_000L);
        scheduler.RunFor(381 * Time.Millisecond);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(clock.UnixNanoseconds, Is.EqualTo(1_399_400_962_381_000_000L));
            Assert.That(WallClock.Iso8601(clock.UnixNanoseconds), Is.EqualTo("2014-05-06T18:29:22.381Z"));
        }
    }

    [Test]
    public void In_virtual_time_the_clock_starts_at_the_unix_epoch()
        => Assert.That(WallClock.Iso8601(new WallClock(new Scheduler(), 0).UnixNanoseconds), Is.EqualTo("1970-01-01T00:00:00.000Z"));
}
