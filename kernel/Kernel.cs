/*
 * SmartOS.Kernel: clocks, the scheduler, packet buffers, wire formats and kstats.
 *
 * This is the bottom layer of the project (see ../shared/ARCHITECTURE.md, "Two clocks, one kernel").
 * Everything above it is single-threaded: one Scheduler is the CPU of one simulated world, and every
 * piece of kernel state is touched only from the callbacks it runs.
 *
 * Terms
 *   time       a long count of nanoseconds since the world started (Scheduler.Now). Nothing in the
 *              core reads the wall clock except RealTimeDriver, which maps it onto Now.
 *   date       a host's WallClock: an epoch plus Now. The epoch is 0 in virtual time; a front end
 *              that stands for a real machine gives the system clock's reading (WallClock.cs).
 *   event      a callback due at a time. Events due at the same time run in the order they were
 *              armed (a sequence number breaks ties), so a run is a pure function of its input.
 *   timer      a KTimer: a reusable, cancellable event owned by its user (like illumos's timeout(9F)
 *              handle or Linux's timer_list). Arming and firing allocate nothing.
 *   packet     a Packet: a pooled buffer with headroom in front of the frame, so a VLAN tag or an
 *              encapsulation header can be pushed without a copy. It has one owner at a time.
 *   kstat      a named set of counters, module:instance:name:statistic, read by `kstat -p`.
 *
 * Rules
 *   1. Core code takes time from Scheduler.Now and randomness from HostRandom, or identities from
 *      the IIdentitySource a front end gives the host (IdentitySource.cs); never from DateTime,
 *      Stopwatch, Task.Delay, a fresh Random or RandomNumberGenerator.
 *   2. In virtual time the clock jumps from event to event (RunUntil, RunUntilIdle). In real time
 *      RealTimeDriver runs the same scheduler on one thread, advancing Now with the wall clock, and
 *      other threads hand it work through a channel.
 *   3. A packet handed to another component belongs to it: the sender must not touch it again.
 *      Whoever ends a packet's journey returns it to its pool (Packet.Free).
 *   4. Every wire format (Wire/, one file per protocol) has a view and, where a layer above reads
 *      or writes its meaning, a representation, as smoltcp's wire module does. A view (EthernetView,
 *      Ipv4View, ...) checks its length once, in TryCreate or Check; after that no accessor throws,
 *      and setters rewrite fields in place. A Repr (Ipv4Repr, Ipv6Repr, UdpRepr, IcmpV4Repr,
 *      IcmpV6Repr, TcpRepr) holds only valid values: Parse refuses with a WireError (truncated,
 *      malformed, bad checksum as ChecksumCaps asks, unrecognized), TryEmit writes a correct header.
 *      Reprs are structs (ref structs where they point at a payload), so parsing allocates nothing.
 *   5. Steady-state paths allocate nothing: timers are reused, packets are pooled, counters are
 *      plain long fields read by reflection-free enumeration when kstat asks.
 *
 * Not done yet: CPU accounting per zone, and more than one scheduler thread.
 */
namespace SmartOS.Kernel;

/// <summary>Nanosecond constants and duration parsing shared by commands and scenarios.</summary>
public static class Time
{
    public const long Nanosecond = 1;
    public const long Microsecond = 1_000;
    public const long Millisecond = 1_000_000;
    public const long Second = 1_000_000_000;

    /// <summary>Parses "10", "10s", "250ms", "50us", "20ns", "1.5s", "2m". A bare number is seconds.</summary>
    public static bool TryParseDuration(string text, out long nanoseconds)
    {
        nanoseconds = 0;
        if (string.IsNullOrWhiteSpace(text)) return false;
        string s = text.Trim();
        long unit = Second;
        string number = s;
        (string suffix, long scale)[] units = [("ns", Nanosecond), ("us", Microsecond), ("ms", Millisecond), ("s", Second), ("m", 60 * Second), ("h", 3600 * Second)];
        foreach (var (suffix, scale) in units)
        {
            if (s.EndsWith(suffix, StringComparison.Ordinal))
            {
                number = s[..^suffix.Length];
                unit = scale;
                break;
            }
        }
        if (!decimal.TryParse(number, System.Globalization.NumberStyles.AllowDecimalPoint, System.Globalization.CultureInfo.InvariantCulture, out decimal value))
            return false;
        // Check before multiplying: decimal throws OverflowException past 7.9e28, and a duration
        // comes from a user's command line or a scenario, where bad input is a result, not a throw.
        if (value < 0 || value > long.MaxValue / 4 / unit + 1) return false;
        decimal ns = value * unit;
        if (ns > long.MaxValue / 4) return false;
        nanoseconds = (long)decimal.Round(ns);
        return true;
    }

    /// <summary>Formats a time as seconds with five decimals, as snoop prints relative times.</summary>
    public static string FormatSeconds(long nanoseconds, int decimals = 5)
        => (nanoseconds / (double)Second).ToString("F" + decimals, System.Globalization.CultureInfo.InvariantCulture);
}
