using System.Runtime.InteropServices;

namespace SmartOS.Vnic;

/// <summary>
/// The administrative state of a TAP device's Linux end, as its user (TapNic) sees carrier: `ip link
/// set down` on the interface is a cable pulled from the NIC, `up` plugs it back (issue 16).
///
/// Linux does not tell a TAP's descriptor that its interface went down: reads simply stop, and
/// writes still succeed while Linux drops what arrives on a down interface. Two ways were weighed:
///   - an rtnetlink socket subscribed to RTNLGRP_LINK, woken by RTM_NEWLINK for the ifindex: no
///     cost while nothing changes, but one more descriptor to poll, a message parser, and a
///     subscription that sees every interface of the namespace;
///   - SIOCGIFFLAGS by name, asked by the reader thread each time it wakes (at least every 100 ms,
///     its poll timeout): one ioctl that takes no lock but RCU (1.5 us each, measured here with a
///     C loop of a million on the loaded 2-core build machine), against a batch of up to 64 frames
///     read per wake-up, and nothing to parse.
/// The second is used. It must ask in the interface's own network namespace. The tun descriptor
/// answers SIOCGSKNS with the namespace it was opened in (its socket's, which is where TUNSETIFF
/// made the interface; it does not follow `ip link set NAME netns ...`), so the thread enters that
/// namespace just long enough to open a datagram socket there, and returns: a socket stays in the
/// namespace it was made in. A TAP meant to live in another namespace is therefore created there
/// (TryOpenIn), not moved after; one that was moved anyway keeps the state it had (the ioctl fails
/// with ENODEV, and the watcher asks again, at most every RetryWakeups wake-ups). A rename is
/// followed: ENODEV, then TUNGETIFF gives the new name. Linux creates a TAP down, so the reader
/// follows a down only after it has seen the interface up once: until the Linux end is first
/// brought up the NIC keeps the link it always had, and a TAP moved to another namespace before it
/// was brought up (the daemon's boot NICs in the tests) is never taken down by its old namespace.
/// </summary>
public sealed partial class TapDevice
{
    private const uint TUNGETIFF = 0x800454d2;
    private const uint SIOCGSKNS = 0x894C;
    private const uint SIOCGIFFLAGS = 0x8913;
    private const int CLONE_NEWNET = 0x40000000;
    private const int AF_INET = 2, SOCK_DGRAM = 2, SOCK_CLOEXEC = 0x80000;
    private const int O_RDONLY_CLOEXEC = 0x80000;
    private const short IFF_UP = 0x1;

    /// <summary>Watches one TAP's Linux end from the reader thread (see above). Not thread-safe: only
    /// the reader uses it.</summary>
    private sealed class LinkWatch : IDisposable
    {
        private readonly int _tunFd;
        private readonly byte[] _ifreq = new byte[40];
        /// <summary>Wake-ups between two attempts to find an interface that was not found (moved out
        /// of its namespace): keeps a busy reader from re-entering namespaces per batch.</summary>
        private const int RetryWakeups = 50;

        private int _sock = -1;
        private int _skip;
        private bool _stranded;

        public LinkWatch(int tunFd)
        {
            _tunFd = tunFd;
            Refresh();
        }

        /// <summary>Whether the interface is administratively up; null when it cannot be told (the
        /// interface gone, or this kernel without SIOCGSKNS), and the caller keeps what it knew.</summary>
        public bool? IsUp()
        {
            if (_sock >= 0 && Ioctl(_sock, SIOCGIFFLAGS, _ifreq) == 0)
                return (BitConverter.ToInt16(_ifreq, 16) & IFF_UP) != 0;
            if (_skip-- > 0) return null;
            Refresh(); // renamed: ask the descriptor for its name now
            if (_sock >= 0 && Ioctl(_sock, SIOCGIFFLAGS, _ifreq) == 0)
                return (BitConverter.ToInt16(_ifreq, 16) & IFF_UP) != 0;
            _skip = RetryWakeups;
            return null;
        }

        /// <summary>The interface's current name and a socket in its namespace.</summary>
        private void Refresh()
        {
            CloseSocket();
            if (_stranded) return;
            Array.Clear(_ifreq);
            if (Ioctl(_tunFd, TUNGETIFF, _ifreq) < 0) return;
            Array.Clear(_ifreq, 16, _ifreq.Length - 16); // keep the name, clear the flags TUNGETIFF wrote
            int ns = IoctlValue(_tunFd, SIOCGSKNS, 0);
            if (ns < 0) return;
            int self = Open("/proc/thread-self/ns/net", O_RDONLY_CLOEXEC);
            try
            {
                if (self < 0 || SetNs(ns, CLONE_NEWNET) < 0) return;
                _sock = Socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                // The thread could not go home (it cannot happen with our own descriptor of our own
                // namespace): it opens no socket again, so nothing is made in the wrong namespace.
                if (SetNs(self, CLONE_NEWNET) < 0) _stranded = true;
            }
            finally
            {
                if (self >= 0) Close(self);
                Close(ns);
            }
        }

        private void CloseSocket()
        {
            if (_sock >= 0) Close(_sock);
            _sock = -1;
        }

        public void Dispose() => CloseSocket();
    }

    /// <summary>As <see cref="TryOpen"/>, with the interface created in the network namespace at
    /// <paramref name="netns"/> (a path such as /run/netns/NAME), where its link state can then be
    /// followed (above). The device is opened on a thread of its own that enters the namespace and
    /// ends there, so no thread of the caller's changes namespace.</summary>
    public static TapDevice? TryOpenIn(string netns, string name, out string? error, bool offload = true)
    {
        int ns = Open(netns, O_RDONLY_CLOEXEC);
        if (ns < 0)
        {
            error = $"cannot open network namespace {netns}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}";
            return null;
        }
        TapDevice? device = null;
        string? failure = null;
        try
        {
            var opener = new Thread(() =>
            {
                if (SetNs(ns, CLONE_NEWNET) < 0)
                    failure = $"cannot enter network namespace {netns}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}";
                else
                    device = TryOpen(name, out failure, offload);
            }) { IsBackground = true, Name = "tap-open-" + name };
            opener.Start();
            opener.Join();
        }
        finally
        {
            Close(ns);
        }
        error = failure;
        return device;
    }

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNs(int fd, int nstype);

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    private static partial int Socket(int domain, int type, int protocol);
}
