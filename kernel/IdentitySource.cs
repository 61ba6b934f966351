namespace SmartOS.Kernel;

/// <summary>
/// Where a host draws the identities that must differ between hosts and between boots: VM UUIDs and
/// random MAC addresses (Host.cs rule 1). In virtual time it is a HostRandom whose seed includes what
/// makes the host distinct; a real-time host (smartos boot) is given the system's random source by
/// its front end, since core code never reads one itself (Kernel.cs rule 1). Whoever draws checks the
/// result against what exists and draws again on a collision.
/// </summary>
public interface IIdentitySource
{
    ulong NextUInt64();
}
