namespace SmartOS.Virt.Devices;

/// <summary>
/// Guest time for the PC platform's timers (PcPlatform.cs, "time"), and how a timer tells the VMM
/// that it armed or moved a deadline. Every timer reads <see cref="Now"/> (Vm.GuestNow: virtual
/// time plus instructions retired in the slice), never the wall clock, so that a run is
/// deterministic (Vmm.cs rule 3).
/// </summary>
public sealed class PlatformClock
{
    private readonly Func<long> _now;

    /// <param name="now">guest time in ns</param>
    public PlatformClock(Func<long> now) { _now = now; }

    public long Now => _now();

    /// <summary>A device armed or moved a deadline: the VMM may have to end the slice sooner or
    /// wake a vCPU that waits in hlt.</summary>
    public event Action? DeadlineChanged;

    internal void NoteDeadline() => DeadlineChanged?.Invoke();
}

/// <summary>A device with something to do at a guest time (a timer's expiry).</summary>
public interface IPlatformTimer
{
    /// <summary>The guest time of the next thing to do, or -1 for nothing.</summary>
    long Deadline { get; }

    /// <summary>Does everything due at or before <paramref name="now"/>. The work is bounded
    /// whatever the guest programmed: missed periods are counted, not replayed one by one.</summary>
    void Advance(long now);
}
