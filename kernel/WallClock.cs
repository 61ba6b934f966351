using System.Globalization;

namespace SmartOS.Kernel;

/// <summary>
/// The date a host tells (vmadm's create_timestamp, last_modified, boot_timestamp): Unix time is
/// <see cref="Epoch"/> plus Scheduler.Now. Core code never reads the system clock (Kernel.cs rule 1),
/// so the epoch is what the front end says it is: in virtual time (a scenario, a test) it is 0 and
/// the host's clock starts at 1970-01-01T00:00:00Z, so dates are as deterministic as the rest of a
/// run; a host that stands for a real machine (`smartos boot`, a one-shot command on a root) is given
/// the system clock's reading at its scheduler's start, as its identity source is given the system's
/// random source.
/// </summary>
public sealed class WallClock(Scheduler scheduler, long epoch)
{
    /// <summary>Unix time, in nanoseconds, at Scheduler time 0.</summary>
    public long Epoch { get; } = epoch;

    /// <summary>Unix time now, in nanoseconds.</summary>
    public long UnixNanoseconds => Epoch + scheduler.Now;

    /// <summary>A Unix time as JavaScript's Date.toISOString prints it ("2014-05-06T18:29:22.381Z"),
    /// as VM.js shows its timestamps; <paramref name="wholeSeconds"/> drops the milliseconds to
    /// ".000", as VM.js shows times it reads with second resolution (file mtimes, zone boot times).</summary>
    public static string Iso8601(long unixNanoseconds, bool wholeSeconds = false)
    {
        long ms = Math.DivRem(unixNanoseconds, Time.Millisecond, out long rem);
        if (rem < 0) ms--;
        if (wholeSeconds) ms -= ((ms % 1000) + 1000) % 1000;
        return DateTime.UnixEpoch.AddMilliseconds(ms).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
    }
}
