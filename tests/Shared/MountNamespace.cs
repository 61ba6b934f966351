using System.Runtime.InteropServices;

namespace SmartOS.Testing;

/// <summary>
/// A thread's own mount namespace, as `unshare -m --propagation private` makes one: the FUSE tests
/// move their loop's thread into one, so the mounts it makes are seen only there (Linux programs
/// reach them with nsenter --mount=/proc/PID/task/TID/ns/mnt) and go when the thread ends.
/// </summary>
internal static class MountNamespace
{
    private const int CloneNewNs = 0x00020000;
    private const nuint MsRec = 0x4000, MsPrivate = 0x40000;

    [DllImport("libc", SetLastError = true)]
    private static extern int unshare(int flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int mount(string? source, string target, string? type, nuint flags, IntPtr data);

    [DllImport("libc")]
    private static extern int gettid();

    /// <summary>Moves the calling thread into a namespace of its own with every mount private; null, or why not.</summary>
    public static string? EnterPrivate()
    {
        if (unshare(CloneNewNs) != 0) return $"unshare(CLONE_NEWNS) failed: errno {Marshal.GetLastPInvokeError()}";
        if (mount(null, "/", null, MsRec | MsPrivate, IntPtr.Zero) != 0) return $"making / private failed: errno {Marshal.GetLastPInvokeError()}";
        return null;
    }

    /// <summary>The calling thread's id (its /proc/PID/task/TID).</summary>
    public static int ThreadId() => gettid();
}
