using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using SmartOS.Kernel;

namespace SmartOS.Cli;

/// <summary>
/// How the front ends come to a host's root directory (kernel/RootLock.cs): whose it is, waiting
/// (bounded) for its lock, and where the host's identities come from.
/// </summary>
/// <remarks>
/// The real sequence of a one-shot `smartos --root R COMMAND` is: refuse a root that belongs to
/// another user; give the command to a running daemon if its socket answers; else wait for the lock,
/// asking the socket again between tries, because a daemon that is starting holds the lock before
/// its socket listens. So a command that races a daemon's start either goes through the socket or,
/// after <see cref="DefaultLockWait"/>, is refused with a message; it is never written behind the daemon's
/// back. `smartos boot` takes the same lock before it reads the configuration and keeps it for life.
/// </remarks>
internal static partial class RootAccess
{
    /// <summary>How long a one-shot command or a starting daemon waits for another holder of the lock,
    /// unless $SMARTOS_LOCK_WAIT says otherwise. A one-shot holds it for well under a second (20
    /// parallel `dladm create-vnic` one-shots on two busy cores all finished within 8 s); a daemon
    /// that starts boots its zones first.</summary>
    public static readonly TimeSpan DefaultLockWait = TimeSpan.FromSeconds(30);

    /// <summary>The environment variable that sets the wait, in whole seconds (0 to 3600).</summary>
    public const string LockWaitVariable = "SMARTOS_LOCK_WAIT";

    /// <summary>The lock wait: <see cref="DefaultLockWait"/>, or $SMARTOS_LOCK_WAIT; false with a
    /// message when that is not a whole number of seconds from 0 to 3600.</summary>
    public static bool TryGetLockWait(out TimeSpan wait, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? error)
    {
        wait = DefaultLockWait;
        error = null;
        if (Environment.GetEnvironmentVariable(LockWaitVariable) is not { Length: > 0 } text) return true;
        if (uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out uint seconds) && seconds <= 3600)
        {
            wait = TimeSpan.FromSeconds(seconds);
            return true;
        }
        error = $"{LockWaitVariable}: bad value '{text}' (whole seconds, 0 to 3600)";
        return false;
    }

    /// <summary>Why a front end may not use <paramref name="root"/>: it is not a directory, or it belongs
    /// to another user (unless we are root); null when it is ours or missing.</summary>
    public static string? Refusal(string root)
    {
        if (File.Exists(root)) return $"{root}: not a directory";
        if (!OperatingSystem.IsLinux()) return null;
        uint me = GetEuid();
        if (me == 0) return null;
        switch (OwnerOf(root, out uint owner))
        {
            case 0:
                return owner == me ? null : $"the host on {root} belongs to uid {owner}: permission denied";
            case Enoent:
                return null;
            case Eacces:
                return $"the host on {root}: permission denied";
            default:
                return null; // Anything else is reported by whatever touches the root next.
        }
    }

    /// <summary>Waits up to <paramref name="wait"/> for the lock on <paramref name="root"/>, calling
    /// <paramref name="stopWaiting"/> between tries (a daemon came up); null when it gave up.</summary>
    public static RootLock? WaitForLock(string root, TimeSpan wait, Func<bool> stopWaiting)
    {
        var clock = Stopwatch.StartNew();
        int pause = 5;
        while (true)
        {
            if (RootLock.TryTake(root) is { } held) return held;
            if (stopWaiting() || clock.Elapsed >= wait) return null;
            Thread.Sleep(pause);
            pause = Math.Min(pause * 2, 100);
        }
    }

    /// <summary>The message for a lock that did not come within <paramref name="wait"/>.</summary>
    public static string Busy(string root, TimeSpan wait)
        => $"the host on {root} is busy: another command held its lock for {wait.TotalSeconds:0}s; try again";

    /// <summary>The boot counter's document in the root's configuration store.</summary>
    public const string BootCounter = "boot-count";

    /// <summary>
    /// The identity source of a one-shot host on a root (Host.cs rule 1): a HostRandom seeded with the
    /// world seed, the host's name, the root's path and the root's boot counter, which this call
    /// advances (the caller holds the root's lock). A scenario still replays byte for byte; two roots,
    /// or two commands on one root, draw different UUIDs and MAC addresses.
    /// </summary>
    public static IIdentitySource OneShotIdentities(IConfigStore store, ulong seed, string name, string root)
    {
        ulong boots = ulong.TryParse(store.Read(BootCounter)?.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out ulong n) ? n : 0;
        boots++;
        store.Write(BootCounter, boots.ToString(CultureInfo.InvariantCulture) + "\n");
        return new HostRandom(HostRandom.Derive(seed, $"identity:{name}\0{Path.GetFullPath(root)}\0{boots}"));
    }

    /// <summary>The identities of a real-time host (smartos boot): the system's random source.</summary>
    public sealed class SystemIdentities : IIdentitySource
    {
        public ulong NextUInt64()
        {
            Span<byte> b = stackalloc byte[8];
            RandomNumberGenerator.Fill(b);
            return BitConverter.ToUInt64(b);
        }
    }

    /// <summary>The epoch of a host that stands for a real machine (Host.cs rule 7): the system
    /// clock's Unix time, in nanoseconds, less the scheduler's time now, so the host's WallClock
    /// tells the date from here on (the real-time driver moves the scheduler with the wall clock).</summary>
    public static long SystemEpoch(Scheduler scheduler)
        => (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100 - scheduler.Now;

    private const int Enoent = 2, Eacces = 13;

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEuid();

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int dirfd, string path, int flags, uint mask, Span<byte> buffer);

    /// <summary>The owner of <paramref name="path"/> through statx(2), whose layout is the same on every
    /// Linux architecture (struct statx: stx_uid is the u32 at offset 20); 0 or an errno.</summary>
    private static int OwnerOf(string path, out uint owner)
    {
        const int AtFdCwd = -100;
        const uint StatxUid = 0x8;
        Span<byte> buffer = stackalloc byte[256];
        owner = 0;
        if (Statx(AtFdCwd, path, 0, StatxUid, buffer) != 0) return Marshal.GetLastPInvokeError();
        owner = BitConverter.ToUInt32(buffer[20..24]);
        return 0;
    }
}
