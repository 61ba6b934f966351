namespace SmartOS.Virt.Devices;

/// <summary>
/// The VM's timer (ports 0x510-0x51F, Vmm.cs "devices"). Reads give guest time in nanoseconds;
/// a write arms a one-shot deadline that wakes a vCPU waiting in hlt.
///   0x510 r32  guest time, low half (latches the high half)
///   0x514 r32  the latched high half
///   0x518 w32  arm: deadline = now + value microseconds (0 disarms)
///   0x51C r32  1 once the armed deadline has passed (reading clears it)
/// </summary>
public sealed class GuestTimer
{
    public const ushort BasePort = 0x510;

    private readonly Func<long> _now;
    private readonly Action<long> _arm;
    private uint _latchedHigh;
    private long _deadline = -1;

    /// <param name="now">guest time in ns</param>
    /// <param name="arm">asks the VMM to wake the vCPU at a guest time (-1: disarm)</param>
    public GuestTimer(Func<long> now, Action<long> arm)
    {
        _now = now;
        _arm = arm;
    }

    public static bool Owns(ushort port) => port >= BasePort && port < BasePort + 16;

    public long Deadline => _deadline;

    public ulong Read(ushort port)
    {
        switch (port - BasePort)
        {
            case 0:
            {
                ulong t = (ulong)_now();
                _latchedHigh = (uint)(t >> 32);
                return (uint)t;
            }
            case 4: return _latchedHigh;
            case 12:
                if (_deadline >= 0 && _now() >= _deadline)
                {
                    _deadline = -1;
                    return 1;
                }
                return 0;
            default: return 0;
        }
    }

    public void Write(ushort port, uint value)
    {
        if (port - BasePort != 8) return;
        _deadline = value == 0 ? -1 : _now() + value * 1000L;
        _arm(_deadline);
    }
}
