/*
 * The lock on a host's root directory (ARCHITECTURE.md, "Persistent state").
 *
 * A root directory holds one host's persistent configuration. Two kinds of process change it: a
 * one-shot `smartos COMMAND` (boot from the files, run one command, write the files, exit) and the
 * daemon (`smartos boot`). Without a lock, two one-shots each read the same files, each add their
 * record and each write: the last rename wins and the other change, already acknowledged, is lost.
 *
 * Rules
 *   1. Whoever reads a root's configuration in order to change it holds the lock from before the
 *      read until after the last write: a one-shot for its whole boot-read-change-write, the daemon
 *      for its whole life. So changes serialise; none is written over a state it did not read.
 *   2. The lock is flock(2) LOCK_EX on ROOT/lock, taken without blocking. flock locks belong to the
 *      open file description, so the kernel drops the lock when its holder dies (kill -9 included),
 *      and two holders in one process exclude each other as two processes do (tests rely on it).
 *      .NET opens a FileShare.None stream with LOCK_EX|LOCK_NB already; Take repeats the flock
 *      itself so the lock holds even where the runtime's own file locking is turned off
 *      (DOTNET_SYSTEM_IO_DISABLEFILELOCKING).
 *   3. This file never waits: TryTake answers at once. How long to wait, and what to tell the user
 *      while a daemon starts, is the front end's business (it owns the wall clock; Kernel.cs rule 1).
 *   4. The lock file is empty and private (0600), like everything else under the root.
 *
 * Not done: a lock that works across hosts on a network file system (flock on NFS is local only).
 */
using System.Runtime.InteropServices;

namespace SmartOS.Kernel;

/// <summary>An exclusive lock on a host's root directory, held until disposed (see the rules above).</summary>
public sealed partial class RootLock : IDisposable
{
    /// <summary>The lock file's name in the root directory.</summary>
    public const string FileName = "lock";

    private readonly FileStream _file;

    private RootLock(FileStream file, string root)
    {
        _file = file;
        Root = root;
    }

    /// <summary>The root directory this lock holds (a full path).</summary>
    public string Root { get; }

    /// <summary>Takes the lock on <paramref name="root"/> (created, private, if missing) without waiting.</summary>
    /// <returns>The held lock, or null when another holder has it.</returns>
    /// <exception cref="IOException">The root cannot be opened (not a directory, flock failing).</exception>
    /// <exception cref="UnauthorizedAccessException">The root belongs to someone else.</exception>
    public static RootLock? TryTake(string root)
    {
        root = Path.GetFullPath(root);
        RootFiles.CreatePrivateDirectory(root);
        string path = Path.Combine(root, FileName);
        FileStream file;
        try
        {
            file = new FileStream(path, RootFiles.PrivateFileOptions(FileMode.OpenOrCreate, FileAccess.ReadWrite));
        }
        catch (IOException e) when (e.HResult == Ewouldblock)
        {
            return null; // The runtime's own LOCK_EX|LOCK_NB found a holder (rule 2).
        }
        if (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS())
        {
            const int LockEx = 2, LockNb = 4;
            if (Flock((int)file.SafeFileHandle.DangerousGetHandle(), LockEx | LockNb) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                file.Dispose();
                if (errno == Ewouldblock) return null;
                throw new IOException($"{path}: flock failed (errno {errno})");
            }
        }
        return new RootLock(file, root);
    }

    /// <summary>The errno of a lock held elsewhere; the runtime reports it as the IOException's HResult.</summary>
    private static int Ewouldblock => OperatingSystem.IsMacOS() ? 35 : 11;

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int Flock(int fd, int operation);

    /// <summary>Releases the lock (closing the file drops it).</summary>
    public void Dispose() => _file.Dispose();
}

/// <summary>Modes of a root directory and its files: private to their owner (ARCHITECTURE.md,
/// "Persistent state"), so another user can neither read the configuration nor reach the socket.</summary>
public static class RootFiles
{
    /// <summary>0700 for the root and its directories.</summary>
    public const UnixFileMode PrivateDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>0600 for every file under the root.</summary>
    public const UnixFileMode PrivateFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Options that open a file exclusively (FileShare.None) and create it 0600.</summary>
    public static FileStreamOptions PrivateFileOptions(FileMode mode, FileAccess access)
    {
        var options = new FileStreamOptions { Mode = mode, Access = access, Share = FileShare.None };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = PrivateFile;
        return options;
    }

    /// <summary>Creates <paramref name="path"/> (and missing parents) with mode 0700.</summary>
    public static void CreatePrivateDirectory(string path)
    {
        if (OperatingSystem.IsWindows()) Directory.CreateDirectory(path);
        else Directory.CreateDirectory(path, PrivateDirectory);
    }

    /// <summary>Makes an existing root private: the root and its directories 0700, its files 0600
    /// (roots written before this rule were 0755 and 0644). The socket is already 0600.</summary>
    public static void MakePrivate(string root)
    {
        if (OperatingSystem.IsWindows() || !Directory.Exists(root)) return;
        SetMode(root, PrivateDirectory);
        foreach (var entry in new DirectoryInfo(root).EnumerateFileSystemInfos("*", SearchOption.AllDirectories))
        {
            if (entry.LinkTarget != null) continue; // A link's target is not ours to change.
            SetMode(entry.FullName, entry is DirectoryInfo ? PrivateDirectory : PrivateFile);
        }
    }

    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static void SetMode(string path, UnixFileMode mode)
    {
        if (File.GetUnixFileMode(path) != mode) File.SetUnixFileMode(path, mode);
    }
}
