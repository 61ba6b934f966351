/*
 * FUSE mounts: a filesystem dataset's file system (ZplFileSystem) mounted on the Linux host, so that
 * Linux programs read and write it (`zfs mount` on a host that runs in real time, as root).
 *
 * Terms
 *   libfuse     libfuse 2.9 (libfuse.so.2), through P/Invoke (LibFuse.cs has every C layout). Version 2,
 *               not 3: it is already on every machine that runs zfs-fuse (zfs-fuse depends on it, and
 *               fuse3 conflicts with the fuse package zfs-fuse needs), and its high-level API hands us
 *               paths, which is what the ZPL's API takes. As root it mounts with mount(2) itself.
 *   FUSE thread one thread per mount runs fuse_loop (single-threaded): it reads a request from
 *               /dev/fuse, calls one of our callbacks, writes the reply.
 *   loop        the world's scheduler thread (RealTimeDriver), the only thread that touches the pool
 *               and the ZPL (Pool.cs rule 9, Kernel.cs rule 2).
 *   request     one callback's work: its arguments in this mount's fields, run on the loop.
 *
 * The data path: the kernel asks (lookup, read, write, ...) → libfuse calls a callback on the FUSE
 * thread → the callback decodes its path, stores its arguments in the mount's request fields and
 * hands RunPosted to the loop with RealTimeDriver.Invoke, as the TAP reader does → the loop runs the
 * ZPL call and signals → the callback writes the reply (struct stat, the bytes read, -errno).
 *
 * Rules
 *   1. Only the loop touches the pool and the ZPL. A callback waits for its request; there is one
 *      request at a time (libfuse runs single-threaded), so its arguments live in reused fields and
 *      read and write allocate nothing once the blocks are cached (the buffers are libfuse's, read
 *      and written in place while the FUSE thread waits).
 *   2. Bounded waits: a request the loop has not started within RequestTimeout is withdrawn and fails
 *      with EIO (a hung loop must not hang Linux programs for ever). A request the loop has started
 *      runs to its end (ZPL calls do not block). A withdrawn request never runs: the loop takes a
 *      request only by moving it from posted to running, once.
 *   3. Commits, ZFS's txg rhythm: every commit interval while mounted (Mount's commitInterval; by
 *      default 5 s, zfs_txg_timeout); at once when this mount has written DirtyLimit bytes since its
 *      last commit (64 MiB, OpenZFS's former zfs_dirty_data_sync), which bounds the memory dirty
 *      blocks hold; at unmount, after the FUSE thread has
 *      ended. A commit is pool-wide, as a txg is. Near a quota or a full pool, a change that would
 *      not fit while the open txg holds room commits first (ZFS's dmu_tx_assign waits for the sync
 *      and retries on ERESTART), so a writer that removed a file can write again at once rather than
 *      get EDQUOT until the next interval; a change is never split across two txgs. fsync and
 *      fsyncdir (the caller asked for durability) write the dataset's intent log and flush the vdevs
 *      before the reply (ZplFileSystem.Fsync, IntentLog.cs), so a sync that returned survives a
 *      crash without a txg commit; the first fsync of a dataset whose log is not open commits one.
 *   4. Errors: every StorageStatus maps to one errno (Errno); anything a callback does not implement
 *      (mknod, xattrs, locks) is ENOSYS from libfuse, never a silent success.
 *   5. Permissions are the kernel's: the mount uses default_permissions, so Linux checks mode and
 *      owner against the caller as for any file system (ZplFileSystem rule 9: the ZPL stores them).
 *      New files belong to the calling process's uid and gid (fuse_get_context); the kernel has
 *      applied the umask. allow_other lets every user in, as a mounted dataset does.
 *   6. Inode numbers are the ZPL's (use_ino): stat's st_ino is the object number, the same inode for
 *      every hard link. The kernel caches attributes and names for 1 s (libfuse's default): a change
 *      made through the ZPL directly, not through the mount, may take that long to show.
 *   7. Unmount: umount2(2) on the loop, refused with EBUSY while a file is open unless forced; forced,
 *      it detaches the mount and, if the FUSE thread has not ended within a second (a process still
 *      holds a file), aborts the connection (/sys/fs/fuse/connections/N/abort), so its calls fail with
 *      ENOTCONN and the thread ends. While it waits for the FUSE thread, the loop runs any request
 *      that thread posts (it would otherwise wait for the loop that waits for it). Then fuse_destroy,
 *      then the commit. A mount that Linux unmounted from outside (umount) is noticed at unmount.
 *   8. The loop itself must never touch files under a mountpoint of its own: the request would wait
 *      for the loop (rule 2 turns that into EIO after RequestTimeout, not a hang).
 *
 * Not done yet (issue 12): several FUSE threads, open-file handles in the ZPL (libfuse renames a file
 * unlinked while open to .fuse_hiddenN until its release), xattrs and ACLs, mknod (fifos, devices),
 * flock and fcntl locks, and per-dataset dirty accounting (the limit counts this mount's writes).
 */
using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using SmartOS.Kernel;

namespace SmartOS.Storage;

public sealed unsafe class FuseMount : IDisposable
{
    /// <summary>Rule 3: by default, commit at least this often while mounted (zfs_txg_timeout).</summary>
    public static readonly long DefaultCommitInterval = 5 * Time.Second;
    /// <summary>Rule 3: commit once this mount has written this many bytes since its last commit.</summary>
    public const long DirtyLimit = 64L * 1024 * 1024;
    /// <summary>Rule 2: how long a request may wait for the loop to start it.</summary>
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(10);
    private const int ReaddirBatch = 256;

    private static bool Changes(Op op) => op is Op.Mkdir or Op.Unlink or Op.Rmdir or Op.Symlink or Op.Rename or Op.Link
        or Op.Chmod or Op.Chown or Op.Truncate or Op.TruncateInode or Op.Create or Op.Write or Op.Utimens;

    private enum Op
    {
        Getattr, GetattrInode, Readlink, Mkdir, Unlink, Rmdir, Symlink, Rename, Link, Chmod, Chown,
        Truncate, TruncateInode, Open, Create, Read, Write, Statfs, Commit, Fsync, Readdir, Utimens,
    }

    private const int Idle = 0, Posted = 1, Running = 2;

    private readonly RealTimeDriver _driver;
    private readonly Pool _pool;
    private readonly ZplFileSystem _fs;
    private readonly string _mountpoint;
    private readonly KTimer _timer;
    private readonly long _commitInterval;
    private readonly Action _run;
    private readonly ManualResetEventSlim _done = new(false);
    private GCHandle _self;
    private IntPtr _fuse;
    private Thread? _thread;
    private volatile bool _loopEnded;
    private bool _unmounted;
    private long _dirtyBytes;
    private int _connection = -1;

    // The request (rule 1): written by the FUSE thread before it posts, read and answered on the loop.
    private int _state;
    private Op _op;
    private string _path = "", _path2 = "";
    private long _inode, _offset, _atime, _mtime, _atimeSpecial, _mtimeSpecial;
    private byte* _buffer;
    private int _size;
    private uint _mode, _uid, _gid;
    private int _errno, _count;
    private FileAttributes _attributes;
    private long _space;
    private string _text = "";
    private FileSystemStats _stats;
    private readonly List<DirectoryEntry> _entries = [];

    private FuseMount(RealTimeDriver driver, Scheduler scheduler, Pool pool, ZplFileSystem fs, string mountpoint, long commitInterval)
    {
        _commitInterval = commitInterval;
        _driver = driver;
        _pool = pool;
        _fs = fs;
        _mountpoint = mountpoint;
        _run = RunPosted;
        _timer = new KTimer(scheduler, _ => PeriodicCommit());
    }

    /// <summary>Where the file system is mounted.</summary>
    public string Mountpoint => _mountpoint;

    /// <summary>False once the FUSE thread has ended: unmounted (from outside too) or the connection aborted.</summary>
    public bool IsConnected => !_loopEnded;

    /// <summary>
    /// Mounts fs (the file system of dataset, in pool) on mountpoint, an absolute path, creating the
    /// directory if it is missing (as zfs mount does). Refuses a directory that is not empty unless
    /// overlay (zfs mount -O). commitInterval (scheduler nanoseconds, 0 for DefaultCommitInterval) is
    /// the longest a change waits for its commit (rule 3). Call on the loop thread of driver's scheduler. On failure nothing stays
    /// mounted and the result says why (its Reason in libzfs's words where it has them: the caller
    /// prints "cannot mount 'mountpoint': reason").
    /// </summary>
    public static StorageResult Mount(Scheduler scheduler, RealTimeDriver driver, Pool pool, ZplFileSystem fs, string dataset,
                                      string mountpoint, out FuseMount? mount, bool overlay = false, long commitInterval = 0)
    {
        mount = null;
        if (commitInterval < 0) return new StorageResult(StorageStatus.InvalidArgument, mountpoint, "negative commit interval");
        Debug.Assert(driver.IsLoopThread, "FuseMount.Mount runs on the loop (rule 1)");
        var check = CheckHost(mountpoint, overlay);
        if (!check.IsOk) return check;
        var created = new FuseMount(driver, scheduler, pool, fs, mountpoint, commitInterval == 0 ? DefaultCommitInterval : commitInterval);
        var started = created.Start(dataset, overlay);
        if (!started.IsOk) return started;
        mount = created;
        return StorageResult.Success;
    }

    /// <summary>Why this host cannot mount through FUSE (not Linux, not root, no /dev/fuse, no libfuse.so.2), or null.</summary>
    public static string? Unavailable()
    {
        if (!OperatingSystem.IsLinux()) return "FUSE mounts need Linux";
        if (LibFuse.GetEuid() != 0) return "mounting through FUSE needs root";
        if (!File.Exists("/dev/fuse")) return "/dev/fuse does not exist (modprobe fuse)";
        return LibFuse.Missing();
    }

    private static StorageResult CheckHost(string mountpoint, bool overlay)
    {
        if (!Path.IsPathRooted(mountpoint) || mountpoint.Contains('\0'))
            return new StorageResult(StorageStatus.InvalidArgument, mountpoint, "mountpoint must be an absolute path");
        if (Unavailable() is string why) return new StorageResult(StorageStatus.NotSupported, mountpoint, why);
        if (File.Exists(mountpoint)) return new StorageResult(StorageStatus.NotDirectory, mountpoint, "not a directory");
        try
        {
            if (!Directory.Exists(mountpoint)) Directory.CreateDirectory(mountpoint);
            else if (!overlay && Directory.EnumerateFileSystemEntries(mountpoint).Any())
                return new StorageResult(StorageStatus.DatasetBusy, mountpoint, "directory is not empty");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new StorageResult(StorageStatus.IoError, mountpoint, e.Message);
        }
        return StorageResult.Success;
    }

    private StorageResult Start(string dataset, bool overlay)
    {
        // fsname shows the dataset in /proc/mounts and df, subtype makes the type fuse.zfs.
        string options = $"fsname={dataset.Replace(",", "\\,")},subtype=zfs,use_ino,default_permissions,allow_other,"
                       + $"big_writes,max_write={Pool.MaxBlockSize},max_read={Pool.MaxBlockSize}"
                       + (_fs.ReadOnly ? ",ro" : "") + (overlay ? ",nonempty" : "");
        IntPtr[] strings = [Marshal.StringToCoTaskMemUTF8("smartos-zfs"), Marshal.StringToCoTaskMemUTF8("-o"), Marshal.StringToCoTaskMemUTF8(options)];
        var argv = (IntPtr*)NativeMemory.Alloc((nuint)(sizeof(IntPtr) * (strings.Length + 1)));
        for (int i = 0; i < strings.Length; i++) argv[i] = strings[i];
        argv[strings.Length] = IntPtr.Zero;
        var args = new LibFuse.Args { Argc = strings.Length, Argv = (IntPtr)argv, Allocated = 0 };
        _self = GCHandle.Alloc(this);
        try
        {
            // fuse_mount and fuse_new each take their options from the same arguments (as fuse_main does);
            // libfuse swaps in copies of its own, which fuse_opt_free_args releases; ours are freed below.
            IntPtr channel = LibFuse.Mount(_mountpoint, &args, out int errno);
            if (channel == IntPtr.Zero)
            {
                _self.Free();
                return new StorageResult(StorageStatus.IoError, _mountpoint, "mount failed: " + Marshal.GetPInvokeErrorMessage(errno));
            }
            _fuse = LibFuse.New(channel, &args, Operations, LibFuse.OperationsSize, GCHandle.ToIntPtr(_self));
            if (_fuse == IntPtr.Zero)
            {
                LibFuse.Unmount(_mountpoint, channel);
                _self.Free();
                return new StorageResult(StorageStatus.IoError, _mountpoint, "libfuse refused the mount options");
            }
        }
        finally
        {
            LibFuse.FreeArgs(&args);
            foreach (var s in strings) Marshal.FreeCoTaskMem(s);
            NativeMemory.Free(argv);
        }
        _connection = FindConnection(_mountpoint);
        _thread = new Thread(RunFuseLoop) { IsBackground = true, Name = "fuse " + dataset };
        _thread.Start();
        _timer.ArmAfter(_commitInterval);
        return StorageResult.Success;
    }

    private void RunFuseLoop()
    {
        LibFuse.Loop(_fuse);
        _loopEnded = true;
    }

    /// <summary>
    /// The FUSE connection's number (the mount's device minor, its directory under
    /// /sys/fs/fuse/connections), read from this thread's mountinfo (the loop's thread may live in a
    /// mount namespace of its own, and /proc/self shows the main thread's); -1 if it is not listed.
    /// </summary>
    private static int FindConnection(string mountpoint)
    {
        int found = -1;
        foreach (string line in File.ReadLines("/proc/thread-self/mountinfo"))
        {
            string[] f = line.Split(' ');
            if (f.Length < 10 || Unescape(f[4]) != mountpoint) continue;
            int dash = Array.IndexOf(f, "-");
            if (dash < 0 || dash + 1 >= f.Length || !f[dash + 1].StartsWith("fuse", StringComparison.Ordinal)) continue;
            string dev = f[2];
            if (int.TryParse(dev.AsSpan(dev.IndexOf(':') + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int minor)) found = minor;
        }
        return found;
    }

    /// <summary>mountinfo escapes space, tab, newline and backslash as \ooo.</summary>
    private static string Unescape(string field)
    {
        if (!field.Contains('\\')) return field;
        var sb = new StringBuilder();
        for (int i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && i + 3 < field.Length)
            {
                sb.Append((char)Convert.ToInt32(field.Substring(i + 1, 3), 8));
                i += 3;
            }
            else sb.Append(field[i]);
        }
        return sb.ToString();
    }

    /// <summary>
    /// Unmounts (rule 7): EBUSY (DatasetBusy, "Device busy") while a file is open unless force; then
    /// ends the FUSE thread and commits the pool. Call on the loop. After success the mount is done with.
    /// </summary>
    public StorageResult Unmount(bool force = false)
    {
        if (_unmounted) return StorageResult.Success;
        Debug.Assert(_driver.IsLoopThread, "FuseMount.Unmount runs on the loop (rule 1)");
        if (!_loopEnded && LibFuse.Umount2(_mountpoint, force ? LibFuse.MntDetach : 0) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno == LibFuse.EBUSY && !force) return new StorageResult(StorageStatus.DatasetBusy, _mountpoint, "Device busy");
            if (errno != LibFuse.EINVAL) return new StorageResult(StorageStatus.IoError, _mountpoint, Marshal.GetPInvokeErrorMessage(errno));
            // EINVAL: no longer a mount point (unmounted from outside); the thread ends, or is aborted below.
        }
        if (!WaitForFuseThread(TimeSpan.FromSeconds(1)))
        {
            Abort();
            if (!WaitForFuseThread(StopTimeout))
                return new StorageResult(StorageStatus.DatasetBusy, _mountpoint, "the FUSE connection did not stop");
        }
        _unmounted = true;
        _timer.Cancel();
        LibFuse.Destroy(_fuse);   // closes /dev/fuse
        _fuse = IntPtr.Zero;
        _self.Free();
        return CommitNow();
    }

    /// <summary>Forced unmount (rule 7); a failure is left for IsConnected and the pool's state to show.</summary>
    public void Dispose() => Unmount(force: true);

    /// <summary>
    /// Joins the FUSE thread, running the requests it posts meanwhile (rule 7): at most timeout, in
    /// joins of 5 ms each (the wait is counted, the clock is not read).
    /// </summary>
    private bool WaitForFuseThread(TimeSpan timeout)
    {
        const int Slice = 5;
        for (long waited = 0; !_thread!.Join(Slice); waited += Slice)
        {
            RunPosted();
            if (waited >= (long)timeout.TotalMilliseconds) return false;
        }
        return true;
    }

    /// <summary>
    /// Aborts the FUSE connection (rule 7) through fusectl: /sys/fs/fuse/connections when it is
    /// mounted there, else a private mount of fusectl in a temporary directory, unmounted at once.
    /// </summary>
    private void Abort()
    {
        if (_connection < 0) return;
        const string System = "/sys/fs/fuse/connections";
        if (TryAbort(System)) return;
        var dir = Directory.CreateTempSubdirectory("smartos-fusectl-");
        try
        {
            if (LibFuse.MountFs("fusectl", dir.FullName, "fusectl", 0, IntPtr.Zero) != 0) return;
            TryAbort(dir.FullName);
            LibFuse.Umount2(dir.FullName, 0);
        }
        finally { dir.Delete(); }
    }

    private bool TryAbort(string connections)
    {
        string abort = $"{connections}/{_connection}/abort";
        if (!File.Exists(abort)) return false;
        try { File.WriteAllText(abort, "1"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
        return true;
    }

    // ---- commits (rule 3) ----

    private void PeriodicCommit()
    {
        CommitNow();
        if (!_unmounted) _timer.ArmAfter(_commitInterval);
    }

    private StorageResult CommitNow()
    {
        _dirtyBytes = 0;
        return _pool.Commit();
    }

    // ---- requests (rules 1 and 2) ----

    /// <summary>On the FUSE thread: posts the request in the fields and waits for its errno.</summary>
    private int Call(Op op)
    {
        _op = op;
        _done.Reset();
        Volatile.Write(ref _state, Posted);
        _driver.Invoke(_run);
        if (!_done.Wait(RequestTimeout))
        {
            if (Interlocked.CompareExchange(ref _state, Idle, Posted) == Posted) return Errno.EIO;
            _done.Wait();   // started: it runs to its end
        }
        return _errno;
    }

    /// <summary>On the loop: runs the posted request, if one is still posted (rule 2).</summary>
    private void RunPosted()
    {
        if (Interlocked.CompareExchange(ref _state, Running, Posted) != Posted) return;
        int errno = Errno.EIO;
        try { errno = Execute(); }
        finally
        {
            _errno = errno;
            Volatile.Write(ref _state, Idle);
            _done.Set();
        }
    }

    /// <summary>Rule 3: the most a change needs beyond its data (dnode, znode table, directory and indirect
    /// blocks), for the commit-first test near a quota.</summary>
    private const long ChangeHeadroom = 4L * ObjectTree.BlockSize;

    private int Execute()
    {
        StorageResult r;
        if (Changes(_op) && _fs.RoomIsInFlight(ChangeHeadroom + (_op == Op.Write ? _size : 0)))
        {
            r = CommitNow();
            if (!r.IsOk) return Errno.Of(r);
        }
        switch (_op)
        {
            case Op.Getattr:
                r = _fs.StatLink(_path, out _attributes);
                if (r.IsOk) r = _fs.SpaceUsed(_attributes.Inode, out _space);
                return Errno.Of(r);
            case Op.GetattrInode:
                r = _fs.GetAttributes(_inode, out _attributes);
                if (r.IsOk) r = _fs.SpaceUsed(_inode, out _space);
                return Errno.Of(r);
            case Op.Readlink:
                return Errno.Of(_fs.ReadLink(_path, out _text));
            case Op.Mkdir:
                return Errno.Of(_fs.MakeDirectory(_path, _mode & 0xFFF, _uid, _gid, out _));
            case Op.Unlink:
                return Errno.Of(_fs.Unlink(_path));
            case Op.Rmdir:
                return Errno.Of(_fs.RemoveDirectory(_path));
            case Op.Symlink:
                return Errno.Of(_fs.CreateSymlink(_path, _path2, _uid, _gid, out _));
            case Op.Rename:
                return Errno.Of(_fs.Rename(_path, _path2));
            case Op.Link:
                return Errno.Of(_fs.Link(_path, _path2));
            case Op.Chmod:
                return Errno.Of(_fs.ChangeMode(_path, _mode & 0xFFF));
            case Op.Chown:
                return Errno.Of(_fs.ChangeOwner(_path, _uid, _gid, follow: false));
            case Op.Truncate:
                return Errno.Of(_fs.Truncate(_path, _offset));
            case Op.TruncateInode:
                return Errno.Of(_fs.Truncate(_inode, _offset));
            case Op.Open:
                r = _fs.Lookup(_path, out _inode);
                if (r.IsOk) r = _fs.GetAttributes(_inode, out _attributes);
                if (r.IsOk && _attributes.Type == FileType.Directory) return Errno.EISDIR;
                return Errno.Of(r);
            case Op.Create:
                return Errno.Of(_fs.CreateFile(_path, _mode & 0xFFF, _uid, _gid, out _inode));
            case Op.Read:
                r = _fs.Read(_inode, _offset, new Span<byte>(_buffer, _size), out _count);
                return Errno.Of(r);
            case Op.Write:
                r = _fs.Write(_inode, _offset, new ReadOnlySpan<byte>(_buffer, _size));
                if (r.IsOk && (_dirtyBytes += _size) >= DirtyLimit) r = CommitNow();
                return Errno.Of(r);
            case Op.Statfs:
                _stats = _fs.StatFs();
                return 0;
            case Op.Commit:
                return Errno.Of(CommitNow());
            case Op.Fsync:
                return Errno.Of(_fs.Fsync());
            case Op.Readdir:
                _entries.Clear();
                r = _fs.Lookup(_path, out long directory, follow: false);
                if (r.IsOk) r = _fs.ReadDirectory(directory, _offset, _entries, ReaddirBatch);
                return Errno.Of(r);
            case Op.Utimens:
                return Errno.Of(SetTimes());
            default:
                return Errno.ENOSYS;
        }
    }

    /// <summary>utimensat: UTIME_NOW is the file system's clock, UTIME_OMIT keeps the time it had.</summary>
    private StorageResult SetTimes()
    {
        long now = _fs.Now;
        long atime = _atime, mtime = _mtime;
        if (_atimeSpecial == LibFuse.UtimeOmit || _mtimeSpecial == LibFuse.UtimeOmit)
        {
            var r = _fs.StatLink(_path, out var current);
            if (!r.IsOk) return r;
            if (_atimeSpecial == LibFuse.UtimeOmit) atime = current.Atime;
            if (_mtimeSpecial == LibFuse.UtimeOmit) mtime = current.Mtime;
        }
        if (_atimeSpecial == LibFuse.UtimeNow) atime = now;
        if (_mtimeSpecial == LibFuse.UtimeNow) mtime = now;
        return _fs.SetTimes(_path, atime, mtime, follow: false);
    }

    // ---- callbacks, on the FUSE thread ----

    private static readonly IntPtr s_operations = BuildOperations();

    private static IntPtr Operations => s_operations;

    private static IntPtr BuildOperations()
    {
        var ops = (IntPtr*)NativeMemory.AllocZeroed(LibFuse.OperationsSize);   // lives as long as the process
        void Set(LibFuse.Slot slot, IntPtr fn) => ops[(int)slot] = fn;
        Set(LibFuse.Slot.Getattr, (IntPtr)(delegate* unmanaged[Cdecl]<byte*, byte*, int>)&OnGetattr);
        Set(LibFuse.Slot.Fgetattr, (IntPtr)(delegate* unmanaged[Cdecl]<byte*, byte*, byte*, int>)&OnFgetattr);
        Set(LibFuse.Slot.Readlink, (IntPtr)(delegate* unmanaged[Cdecl]<byte*, byte*, nuint, int>)&OnReadlink);
        Set(LibFuse.Slot.Mkdir, (IntPtr)(delegate* unmanaged[Cdecl]<byte*, uint, int>)&OnMkdir);
        Set(LibFuse.Slot.Unlink, (IntPtr)(delegate* unmanaged[Cdecl]<byte*, int>)&OnUnlink);
        Set(LibFuse.Slot.Rmdir, (IntPtr)(delegate* unmanaged[Cdecl]<byte*, int>)&OnRmdir);
        Set(LibFuse.Slot.Symlink, (IntPtr)(delegate* unmanaged[Cdecl]<byte*, byte*, int>)&OnSymlink);
        Set(LibFuse.Slot.Rename, (IntPtr)(delegate* unmanaged[Cdecl]<byte*, byte*, int>)&OnRename);
        Set(LibFuse.Slot.Link, (IntPtr)(delegate* unmanaged[Cdecl]<byte*, byte*, int>)&OnLink);
        Set(LibFuse.Slot.Chmod, (IntPtr)(delegate* unmanaged[Cdecl]<byte*, uint, int>)&OnChmod);
        Set(LibFuse.Slot.Chown, (IntPtr)(delegate* unmanaged[Cdecl]<byte*, uint, uint, int>)&OnChown);
        Set(LibFuse.Slot.Truncate, (IntPtr)(delegate* unmanaged[Cdecl]<byte*, long, int>)&OnTruncate);
        Set(LibFuse.Slot.Ftruncate, (IntPtr)(delegate* unmanaged[Cdecl]<byte*, long, byte*, int>)&OnFtruncate);
        Set(LibFuse.Slot.Open, (IntPtr)(delegate* unmanaged[Cdecl]<byte*, byte*, int>)&OnOpen);
        Set(LibFuse.Slot.Create, (IntPtr)(delegate* unmanaged[Cdecl]<byte*, uint, byte*, int>)&OnCreate);
        Set(LibFuse.Slot.Read, (IntPtr)(delegate* unmanaged[Cdecl]<byte*, byte*, nuint, long, byte*, int>)&OnRead);
        Set(LibFuse.Slot.Write, (IntPtr)(delegate* unmanaged[Cdecl]<byte*, byte*, nuint, long, byte*, int>)&OnWrite);
        Set(LibFuse.Slot.Statfs, (IntPtr)(delegate* unmanaged[Cdecl]<byte*, byte*, int>)&OnStatfs);
        Set(LibFuse.Slot.Flush, (IntPtr)(delegate* unmanaged[Cdecl]<byte*, byte*, int>)&OnNothing);
        Set(LibFuse.Slot.Release, (IntPtr)(delegate* unmanaged[Cdecl]<byte*, byte*, int>)&OnNothing);
        Set(LibFuse.Slot.Fsync, (IntPtr)(delegate* unmanaged[Cdecl]<byte*, int, byte*, int>)&OnFsync);
        Set(LibFuse.Slot.Fsyncdir, (IntPtr)(delegate* unmanaged[Cdecl]<byte*, int, byte*, int>)&OnFsync);
        Set(LibFuse.Slot.Readdir, (IntPtr)(delegate* unmanaged[Cdecl]<byte*, IntPtr, IntPtr, long, byte*, int>)&OnReaddir);
        Set(LibFuse.Slot.Utimens, (IntPtr)(delegate* unmanaged[Cdecl]<byte*, byte*, int>)&OnUtimens);
        *(uint*)((byte*)ops + LibFuse.OperationsFlags) = LibFuse.FlagUtimeOmitOk;
        return (IntPtr)ops;
    }

    /// <summary>The mount libfuse calls for: fuse_new's user data, a handle to it.</summary>
    private static FuseMount Current(out byte* context)
    {
        context = (byte*)LibFuse.GetContext();
        return (FuseMount)GCHandle.FromIntPtr(*(IntPtr*)(context + 24)).Target!;
    }

    private static FuseMount Current() => Current(out _);

    private static string PathOf(byte* path) => Marshal.PtrToStringUTF8((IntPtr)path) ?? "";

    private static long Handle(byte* fileInfo) => *(long*)(fileInfo + LibFuse.FileInfoFh);

    /// <summary>
    /// A callback's exception must not cross into C (that ends the process): a bug asserts in a debug
    /// build, and in a release build the caller gets EIO.
    /// </summary>
    private static int Guard(Exception e)
    {
        Debug.Fail("FUSE callback threw: " + e);
        return -Errno.EIO;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnGetattr(byte* path, byte* stat)
    {
        try
        {
            var m = Current();
            m._path = PathOf(path);
            int e = m.Call(Op.Getattr);
            if (e == 0) LibFuse.WriteStat(stat, m._attributes, m._space);
            return -e;
        }
        catch (Exception ex) { return Guard(ex); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnFgetattr(byte* path, byte* stat, byte* fi)
    {
        try
        {
            var m = Current();
            m._inode = Handle(fi);
            int e = m.Call(Op.GetattrInode);
            if (e == 0) LibFuse.WriteStat(stat, m._attributes, m._space);
            return -e;
        }
        catch (Exception ex) { return Guard(ex); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnReadlink(byte* path, byte* buffer, nuint size)
    {
        try
        {
            var m = Current();
            m._path = PathOf(path);
            int e = m.Call(Op.Readlink);
            if (e != 0) return -e;
            if (size == 0) return -Errno.EINVAL;
            // readlink(2) truncates a target longer than the buffer; libfuse wants it NUL-terminated.
            byte[] target = Encoding.UTF8.GetBytes(m._text);
            int n = (int)Math.Min((nuint)target.Length, size - 1);
            target.AsSpan(0, n).CopyTo(new Span<byte>(buffer, n));
            buffer[n] = 0;
            return 0;
        }
        catch (Exception ex) { return Guard(ex); }
    }

    private static int Simple(Op op, byte* path, byte* path2 = null, uint mode = 0)
    {
        var m = Current(out byte* context);
        m._path = PathOf(path);
        m._path2 = path2 == null ? "" : PathOf(path2);
        m._mode = mode;
        m._uid = *(uint*)(context + 8);
        m._gid = *(uint*)(context + 12);
        return -m.Call(op);
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnMkdir(byte* path, uint mode)
    {
        try { return Simple(Op.Mkdir, path, null, mode); }
        catch (Exception ex) { return Guard(ex); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnUnlink(byte* path)
    {
        try { return Simple(Op.Unlink, path); }
        catch (Exception ex) { return Guard(ex); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnRmdir(byte* path)
    {
        try { return Simple(Op.Rmdir, path); }
        catch (Exception ex) { return Guard(ex); }
    }

    /// <summary>symlink(target, linkpath): the first argument is the link's contents.</summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnSymlink(byte* target, byte* path)
    {
        try { return Simple(Op.Symlink, target, path); }
        catch (Exception ex) { return Guard(ex); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnRename(byte* from, byte* to)
    {
        try { return Simple(Op.Rename, from, to); }
        catch (Exception ex) { return Guard(ex); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnLink(byte* existing, byte* path)
    {
        try { return Simple(Op.Link, existing, path); }
        catch (Exception ex) { return Guard(ex); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnChmod(byte* path, uint mode)
    {
        try { return Simple(Op.Chmod, path, null, mode); }
        catch (Exception ex) { return Guard(ex); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnChown(byte* path, uint uid, uint gid)
    {
        try
        {
            var m = Current();
            m._path = PathOf(path);
            m._uid = uid;
            m._gid = gid;
            return -m.Call(Op.Chown);
        }
        catch (Exception ex) { return Guard(ex); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnTruncate(byte* path, long length)
    {
        try
        {
            var m = Current();
            m._path = PathOf(path);
            m._offset = length;
            return -m.Call(Op.Truncate);
        }
        catch (Exception ex) { return Guard(ex); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnFtruncate(byte* path, long length, byte* fi)
    {
        try
        {
            var m = Current();
            m._inode = Handle(fi);
            m._offset = length;
            return -m.Call(Op.TruncateInode);
        }
        catch (Exception ex) { return Guard(ex); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnOpen(byte* path, byte* fi)
    {
        try
        {
            var m = Current();
            m._path = PathOf(path);
            int e = m.Call(Op.Open);
            if (e == 0) *(long*)(fi + LibFuse.FileInfoFh) = m._inode;
            return -e;
        }
        catch (Exception ex) { return Guard(ex); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnCreate(byte* path, uint mode, byte* fi)
    {
        try
        {
            int e = Simple(Op.Create, path, null, mode);
            if (e == 0) *(long*)(fi + LibFuse.FileInfoFh) = Current()._inode;
            return e;
        }
        catch (Exception ex) { return Guard(ex); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnRead(byte* path, byte* buffer, nuint size, long offset, byte* fi)
    {
        try { return Transfer(Op.Read, buffer, size, offset, fi); }
        catch (Exception ex) { return Guard(ex); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnWrite(byte* path, byte* buffer, nuint size, long offset, byte* fi)
    {
        try { return Transfer(Op.Write, buffer, size, offset, fi); }
        catch (Exception ex) { return Guard(ex); }
    }

    /// <summary>read and write: libfuse's buffer in place (rule 2); the bytes read or written, or -errno.</summary>
    private static int Transfer(Op op, byte* buffer, nuint size, long offset, byte* fi)
    {
        var m = Current();
        m._inode = Handle(fi);
        m._buffer = buffer;
        m._size = (int)Math.Min(size, int.MaxValue);
        m._offset = offset;
        int e = m.Call(op);
        m._buffer = null;
        return e != 0 ? -e : op == Op.Read ? m._count : m._size;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnStatfs(byte* path, byte* statvfs)
    {
        try
        {
            var m = Current();
            int e = m.Call(Op.Statfs);
            if (e == 0) LibFuse.WriteStatVfs(statvfs, m._stats);
            return -e;
        }
        catch (Exception ex) { return Guard(ex); }
    }

    /// <summary>flush and release: the ZPL keeps no per-open state, and writes are already in the txg.</summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnNothing(byte* path, byte* fi) => 0;

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnFsync(byte* path, int dataOnly, byte* fi)
    {
        try { return -Current().Call(Op.Fsync); }
        catch (Exception ex) { return Guard(ex); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnReaddir(byte* path, IntPtr buffer, IntPtr filler, long offset, byte* fi)
    {
        try
        {
            var m = Current();
            m._path = PathOf(path);
            m._offset = offset;
            int e = m.Call(Op.Readdir);
            if (e != 0) return -e;
            byte* stat = stackalloc byte[LibFuse.StatSize];
            Span<byte> name = stackalloc byte[ZplDirectory.MaxName + 1];
            foreach (var entry in m._entries)
            {
                new Span<byte>(stat, LibFuse.StatSize).Clear();
                *(ulong*)(stat + 8) = (ulong)entry.Inode;
                *(uint*)(stat + 24) = (uint)entry.Type << 12;
                int n = Encoding.UTF8.GetBytes(entry.Name, name);
                name[n] = 0;
                fixed (byte* p = name)
                    if (LibFuse.Fill(filler, buffer, p, stat, entry.Next) != 0) break;
            }
            return 0;
        }
        catch (Exception ex) { return Guard(ex); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnUtimens(byte* path, byte* times)
    {
        try
        {
            var m = Current();
            m._path = PathOf(path);
            if (times == null)
            {
                m._atimeSpecial = m._mtimeSpecial = LibFuse.UtimeNow;
            }
            else
            {
                m._atime = LibFuse.ReadTime(times, out m._atimeSpecial);
                m._mtime = LibFuse.ReadTime(times + 16, out m._mtimeSpecial);
            }
            return -m.Call(Op.Utimens);
        }
        catch (Exception ex) { return Guard(ex); }
    }
}

/// <summary>Linux errno values for the FUSE replies, and the one each StorageStatus maps to (FuseMount rule 4).</summary>
internal static class Errno
{
    public const int EPERM = 1, ENOENT = 2, EIO = 5, EBUSY = 16, EEXIST = 17, ENOTDIR = 20, EISDIR = 21, EINVAL = 22,
                     EFBIG = 27, ENOSPC = 28, EROFS = 30, ENAMETOOLONG = 36, ENOSYS = 38, ENOTEMPTY = 39, ELOOP = 40,
                     EOPNOTSUPP = 95, EDQUOT = 122;

    public static int Of(StorageResult result) => Of(result.Status);

    public static int Of(StorageStatus status) => status switch
    {
        StorageStatus.Ok => 0,
        StorageStatus.NoSuchObject or StorageStatus.NoSuchDataset or StorageStatus.NoSuchPool => ENOENT,
        StorageStatus.InvalidArgument => EINVAL,
        StorageStatus.NoSpace or StorageStatus.PropertySpace => ENOSPC,
        StorageStatus.QuotaExceeded => EDQUOT,
        StorageStatus.ReadOnly => EROFS,
        StorageStatus.Exists or StorageStatus.DatasetExists or StorageStatus.HasDependents => EEXIST,
        StorageStatus.NotDirectory => ENOTDIR,
        StorageStatus.IsDirectory => EISDIR,
        StorageStatus.NotEmpty => ENOTEMPTY,
        StorageStatus.NameTooLong => ENAMETOOLONG,
        StorageStatus.SymlinkLoop => ELOOP,
        StorageStatus.NotPermitted => EPERM,
        StorageStatus.FileTooBig => EFBIG,
        StorageStatus.DatasetBusy => EBUSY,
        StorageStatus.NotSupported => EOPNOTSUPP,
        // ECKSUM has no Linux errno: OpenZFS on Linux reports a block no copy of which verifies as EIO.
        _ => EIO,
    };
}
