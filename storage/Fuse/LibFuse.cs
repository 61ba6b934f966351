using System.Runtime.InteropServices;

namespace SmartOS.Storage;

/// <summary>
/// libfuse 2.9's high-level API (libfuse.so.2) and the C layouts it shares with us on x86-64 Linux
/// (FuseMount.cs says why version 2). Every offset below is glibc's or libfuse 2.9's header, checked
/// against the headers' field order and sizes (8-byte pointers, longs and off_t; 4-byte ints, mode_t,
/// uid_t, gid_t):
///   struct fuse_args        argc i32 @0, argv @8, allocated i32 @16; 24 bytes
///   struct fuse_operations  38 function pointers (getattr ... bmap) @0..296, the flag bits u32 @304
///                           (nullpath_ok 1, nopath 2, utime_omit_ok 4), then ioctl, poll, write_buf,
///                           read_buf, flock, fallocate @312..352; 360 bytes
///   struct fuse_file_info   flags i32 @0, fh_old @8, writepage i32 @16, bits u32 @20 (direct_io 1,
///                           keep_cache 2, ...), fh u64 @24, lock_owner u64 @32; 40 bytes
///   struct fuse_context     fuse @0, uid u32 @8, gid u32 @12, pid i32 @16, private_data @24, umask @32
///   struct stat             dev @0, ino @8, nlink @16, mode u32 @24, uid @28, gid @32, rdev @40,
///                           size @48, blksize @56, blocks @64, atim @72, mtim @88, ctim @104; 144 bytes
///   struct statvfs          bsize @0, frsize @8, blocks @16, bfree @24, bavail @32, files @40,
///                           ffree @48, favail @56, fsid @64, flag @72, namemax @80; 112 bytes
///   struct timespec         sec i64 @0, nsec i64 @8
/// </summary>
internal static unsafe partial class LibFuse
{
    private const string Library = "libfuse.so.2";

    public const int OperationsSize = 360;
    public const int OperationsFlags = 304;
    public const uint FlagUtimeOmitOk = 4;
    public const int StatSize = 144;
    public const int StatVfsSize = 112;
    public const int FileInfoFh = 24;
    public const int FileInfoBits = 20;
    public const uint DirectIo = 1;
    public const long UtimeNow = (1L << 30) - 1;
    public const long UtimeOmit = (1L << 30) - 2;

    /// <summary>Slot numbers in struct fuse_operations (each 8 bytes).</summary>
    public enum Slot
    {
        Getattr = 0, Readlink = 1, Mknod = 3, Mkdir = 4, Unlink = 5, Rmdir = 6, Symlink = 7, Rename = 8,
        Link = 9, Chmod = 10, Chown = 11, Truncate = 12, Open = 14, Read = 15, Write = 16, Statfs = 17,
        Flush = 18, Release = 19, Fsync = 20, Readdir = 26, Fsyncdir = 28, Create = 32, Ftruncate = 33,
        Fgetattr = 34, Utimens = 36,
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Args
    {
        public int Argc;
        public IntPtr Argv;
        public int Allocated;
    }

    // libfuse.so.2 keeps several versions of its entry points (fuse_new of 2.1, 2.2, 2.5, 2.6) and an
    // unversioned fuse_new that is the 2.1 one: a plain dlsym found that, and fuse_new then refused
    // our arguments ("unknown option"). So each is bound by name and version with dlvsym, as a C
    // program built against the 2.9 headers is.
    private static readonly IntPtr s_library = NativeLibrary.TryLoad(Library, out IntPtr h) ? h : IntPtr.Zero;
    private static readonly delegate* unmanaged[Cdecl]<byte*, Args*, IntPtr> s_mount = (delegate* unmanaged[Cdecl]<byte*, Args*, IntPtr>)Bind("fuse_mount", "FUSE_2.6");
    private static readonly delegate* unmanaged[Cdecl]<byte*, IntPtr, void> s_unmount = (delegate* unmanaged[Cdecl]<byte*, IntPtr, void>)Bind("fuse_unmount", "FUSE_2.6");
    private static readonly delegate* unmanaged[Cdecl]<IntPtr, Args*, IntPtr, nuint, IntPtr, IntPtr> s_new = (delegate* unmanaged[Cdecl]<IntPtr, Args*, IntPtr, nuint, IntPtr, IntPtr>)Bind("fuse_new", "FUSE_2.6");
    private static readonly delegate* unmanaged[Cdecl]<IntPtr, int> s_loop = (delegate* unmanaged[Cdecl]<IntPtr, int>)Bind("fuse_loop", "FUSE_2.2");
    private static readonly delegate* unmanaged[Cdecl]<IntPtr, void> s_destroy = (delegate* unmanaged[Cdecl]<IntPtr, void>)Bind("fuse_destroy", "FUSE_2.2");
    private static readonly delegate* unmanaged[Cdecl]<Args*, void> s_freeArgs = (delegate* unmanaged[Cdecl]<Args*, void>)Bind("fuse_opt_free_args", "FUSE_2.5");
    private static readonly delegate* unmanaged[Cdecl]<IntPtr> s_getContext = (delegate* unmanaged[Cdecl]<IntPtr>)Bind("fuse_get_context", "FUSE_2.8");

    [LibraryImport("libc", EntryPoint = "dlvsym", StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr DlVSym(IntPtr handle, string name, string version);

    private static IntPtr Bind(string name, string version) => s_library == IntPtr.Zero ? IntPtr.Zero : DlVSym(s_library, name, version);

    /// <summary>fuse_mount: mounts (mount(2) as root) and opens /dev/fuse; 0 on failure, errno set.</summary>
    public static IntPtr Mount(string mountpoint, Args* args, out int errno)
    {
        byte[] path = Utf8z(mountpoint);
        IntPtr channel;
        fixed (byte* p = path)
        {
            Marshal.SetLastSystemError(0);
            channel = s_mount(p, args);
            errno = Marshal.GetLastSystemError();
        }
        return channel;
    }

    public static void Unmount(string mountpoint, IntPtr channel)
    {
        fixed (byte* p = Utf8z(mountpoint)) s_unmount(p, channel);
    }

    public static IntPtr New(IntPtr channel, Args* args, IntPtr operations, nuint size, IntPtr userData) => s_new(channel, args, operations, size, userData);

    public static int Loop(IntPtr fuse) => s_loop(fuse);

    public static void Destroy(IntPtr fuse) => s_destroy(fuse);

    public static void FreeArgs(Args* args) => s_freeArgs(args);

    public static IntPtr GetContext() => s_getContext();

    private static byte[] Utf8z(string s)
    {
        var bytes = new byte[System.Text.Encoding.UTF8.GetByteCount(s) + 1];
        System.Text.Encoding.UTF8.GetBytes(s, bytes);
        return bytes;
    }

    [LibraryImport("libc", EntryPoint = "geteuid")]
    public static partial uint GetEuid();

    [LibraryImport("libc", EntryPoint = "umount2", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Umount2(string target, int flags);

    [LibraryImport("libc", EntryPoint = "mount", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int MountFs(string source, string target, string type, nuint flags, IntPtr data);

    public const int MntDetach = 2;
    public const int EINVAL = 22;
    public const int EBUSY = 16;

    /// <summary>libfuse's fuse_fill_dir_t: adds one entry to a readdir reply; 1 when the reply is full.</summary>
    public static int Fill(IntPtr filler, IntPtr buffer, byte* name, byte* stat, long offset) =>
        ((delegate* unmanaged[Cdecl]<IntPtr, byte*, byte*, long, int>)filler)(buffer, name, stat, offset);

    /// <summary>Can libfuse.so.2 be loaded? Null if so, else why not.</summary>
    public static string? Missing()
    {
        if (s_library == IntPtr.Zero) return "libfuse.so.2 is not installed (Debian package libfuse2)";
        return s_mount == null || s_unmount == null || s_new == null || s_loop == null || s_destroy == null || s_freeArgs == null || s_getContext == null
            ? "libfuse.so.2 lacks the 2.9 entry points (fuse_new@FUSE_2.6, fuse_get_context@FUSE_2.8, ...)" : null;
    }

    /// <summary>Writes struct stat for attributes (times in the file system's nanoseconds since the epoch).</summary>
    public static void WriteStat(byte* st, in FileAttributes a, long spaceUsed)
    {
        new Span<byte>(st, StatSize).Clear();
        *(ulong*)(st + 8) = (ulong)a.Inode;
        *(ulong*)(st + 16) = (ulong)a.Links;
        *(uint*)(st + 24) = a.FullMode;
        *(uint*)(st + 28) = a.Uid;
        *(uint*)(st + 32) = a.Gid;
        *(long*)(st + 48) = a.Size;
        *(long*)(st + 56) = ObjectTree.BlockSize;
        *(long*)(st + 64) = (spaceUsed + 511) / 512;
        WriteTime(st + 72, a.Atime);
        WriteTime(st + 88, a.Mtime);
        WriteTime(st + 104, a.Ctime);
    }

    private static void WriteTime(byte* ts, long nanoseconds)
    {
        *(long*)ts = Math.DivRem(nanoseconds, 1_000_000_000, out long rest) - (rest < 0 ? 1 : 0);
        *(long*)(ts + 8) = rest < 0 ? rest + 1_000_000_000 : rest;
    }

    /// <summary>A struct timespec as nanoseconds; UtimeNow and UtimeOmit come back as themselves in Special.</summary>
    public static long ReadTime(byte* ts, out long special)
    {
        long sec = *(long*)ts, nsec = *(long*)(ts + 8);
        special = nsec is UtimeNow or UtimeOmit ? nsec : 0;
        return sec * 1_000_000_000 + nsec;
    }

    public static void WriteStatVfs(byte* st, in FileSystemStats s)
    {
        new Span<byte>(st, StatVfsSize).Clear();
        *(ulong*)st = (ulong)s.BlockSize;
        *(ulong*)(st + 8) = Pool.SectorSize;
        *(ulong*)(st + 16) = (ulong)(s.TotalBytes / Pool.SectorSize);
        *(ulong*)(st + 24) = (ulong)(s.FreeBytes / Pool.SectorSize);
        *(ulong*)(st + 32) = (ulong)(s.FreeBytes / Pool.SectorSize);
        *(ulong*)(st + 40) = (ulong)(s.Files + s.FreeFiles);
        *(ulong*)(st + 48) = (ulong)s.FreeFiles;
        *(ulong*)(st + 56) = (ulong)s.FreeFiles;
        *(ulong*)(st + 80) = ZplDirectory.MaxName;
    }
}
