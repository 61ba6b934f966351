using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace SmartOS.Virt;

/// <summary>
/// A guest's RAM: one page-aligned native block at guest physical address 0 (Vmm.cs rule 2), from
/// an anonymous mmap(2) on Linux (zero-filled on first touch, so a large guest costs only what it
/// uses) and aligned native memory elsewhere. Native so that KVM can map the same bytes
/// (KVM_SET_USER_MEMORY_REGION wants a page-aligned host address) and so the interpreter reads it
/// without array bounds checks once it has checked the range itself. Every public accessor checks
/// bounds and returns false on a bad range: guest addresses are untrusted.
/// </summary>
public sealed unsafe class GuestMemory : IDisposable
{
    public const int PageSize = 4096;
    private const int PROT_READ = 1, PROT_WRITE = 2, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20, MAP_NORESERVE = 0x4000;

    [DllImport("libc", SetLastError = true)] private static extern void* mmap(void* addr, nuint length, int prot, int flags, int fd, nint offset);
    [DllImport("libc", SetLastError = true)] private static extern int munmap(void* addr, nuint length);

    private byte* _base;
    private readonly bool _mapped;

    public GuestMemory(ulong size)
    {
        if (size == 0 || size % PageSize != 0 || size > (1UL << 34))
            throw new ArgumentOutOfRangeException(nameof(size), "guest memory must be a non-zero multiple of 4 KiB, at most 16 GiB");
        Size = size;
        if (OperatingSystem.IsLinux())
        {
            void* p = mmap(null, (nuint)size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (p == (void*)-1) throw new OutOfMemoryException($"mmap of {size} bytes of guest memory failed (errno {Marshal.GetLastPInvokeError()})");
            _base = (byte*)p;
            _mapped = true;
        }
        else
        {
            _base = (byte*)NativeMemory.AlignedAlloc((nuint)size, PageSize);
            NativeMemory.Clear(_base, (nuint)size);
        }
    }

    public ulong Size { get; }

    /// <summary>The host address of guest physical 0 (for KVM and the interpreter's fast path).</summary>
    internal byte* Base => _base;

    /// <summary>True when [address, address + length) lies inside RAM (no overflow).</summary>
    public bool Contains(ulong address, ulong length) => address < Size && length <= Size - address;

    public bool TryRead(ulong address, Span<byte> destination)
    {
        if (!Contains(address, (ulong)destination.Length)) return false;
        new ReadOnlySpan<byte>(_base + address, destination.Length).CopyTo(destination);
        return true;
    }

    public bool TryWrite(ulong address, ReadOnlySpan<byte> source)
    {
        if (!Contains(address, (ulong)source.Length)) return false;
        source.CopyTo(new Span<byte>(_base + address, source.Length));
        Written?.Invoke(address, (ulong)source.Length);
        return true;
    }

    /// <summary>A view of guest memory, or false when the range is not RAM. Writers through the span
    /// must call <see cref="NoteWritten"/> so cached decoded code is dropped.</summary>
    public bool TryGetSpan(ulong address, int length, out Span<byte> span)
    {
        if (length < 0 || !Contains(address, (ulong)length)) { span = default; return false; }
        span = new Span<byte>(_base + address, length);
        return true;
    }

    public void NoteWritten(ulong address, ulong length) => Written?.Invoke(address, length);

    public bool TryReadUInt16(ulong a, out ushort v) { if (!Contains(a, 2)) { v = 0; return false; } v = BinaryPrimitives.ReadUInt16LittleEndian(new ReadOnlySpan<byte>(_base + a, 2)); return true; }
    public bool TryReadUInt32(ulong a, out uint v) { if (!Contains(a, 4)) { v = 0; return false; } v = BinaryPrimitives.ReadUInt32LittleEndian(new ReadOnlySpan<byte>(_base + a, 4)); return true; }
    public bool TryReadUInt64(ulong a, out ulong v) { if (!Contains(a, 8)) { v = 0; return false; } v = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(_base + a, 8)); return true; }

    public bool TryWriteUInt16(ulong a, ushort v) { Span<byte> b = stackalloc byte[2]; BinaryPrimitives.WriteUInt16LittleEndian(b, v); return TryWrite(a, b); }
    public bool TryWriteUInt32(ulong a, uint v) { Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); return TryWrite(a, b); }
    public bool TryWriteUInt64(ulong a, ulong v) { Span<byte> b = stackalloc byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(b, v); return TryWrite(a, b); }

    /// <summary>Raised after host-side writes (loader, devices) so the interpreter drops cached code.</summary>
    internal event Action<ulong, ulong>? Written;

    public void Dispose()
    {
        if (_base != null)
        {
            if (_mapped) munmap(_base, (nuint)Size);
            else NativeMemory.AlignedFree(_base);
            _base = null;
        }
    }
}
