namespace SmartOS.Zones;

/// <summary>
/// A zone's memory cap (capped-memory physical, vmadm max_physical_memory), charged by the layers
/// that hold memory on the zone's behalf: socket buffers, reassembly queues, caches (Host.cs rule 6).
/// A charge that would go over the cap fails in that zone only and is counted.
/// </summary>
public interface IMemoryAccount
{
    /// <summary>The cap in bytes; long.MaxValue when the zone is uncapped.</summary>
    long Cap { get; }
    /// <summary>Bytes charged and not yet released.</summary>
    long Usage { get; }
    /// <summary>Charges refused because they would have gone over the cap (zonememstat NOVER).</summary>
    long Overs { get; }
    /// <summary>Charges <paramref name="bytes"/>; false (and nothing charged) when over the cap.</summary>
    bool TryCharge(long bytes);
    /// <summary>Returns bytes charged earlier.</summary>
    void Release(long bytes);
}

/// <summary>The memory account of one zone (see <see cref="IMemoryAccount"/>). Its kstat is
/// memory_cap:ZONEID:ZONENAME with rss, physcap and nover, as illumos's memory_cap kstats.</summary>
public sealed class MemoryAccount : IMemoryAccount, Kernel.IKstatSource
{
    public MemoryAccount(long? cap) => Cap = cap ?? long.MaxValue;

    public long Cap { get; internal set; }
    public long Usage { get; private set; }
    public long Overs { get; private set; }
    public bool IsCapped => Cap != long.MaxValue;

    public bool TryCharge(long bytes)
    {
        if (bytes < 0) throw new ArgumentOutOfRangeException(nameof(bytes), "a charge is never negative");
        if (bytes > Cap - Usage)
        {
            Overs++;
            return false;
        }
        Usage += bytes;
        return true;
    }

    public void Snapshot(List<KeyValuePair<string, long>> into)
    {
        into.Add(new("nover", Overs));
        into.Add(new("physcap", IsCapped ? Cap : 0));
        into.Add(new("rss", Usage));
    }

    public void Release(long bytes)
    {
        if (bytes < 0 || bytes > Usage) throw new ArgumentOutOfRangeException(nameof(bytes), "released more than was charged");
        Usage -= bytes;
    }
}
