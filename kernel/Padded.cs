using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace SmartOS.Kernel;

/// <summary>
/// A value with a cache line of padding before and after it, so that nothing outside it shares a
/// line with it: for the fields a host's thread writes on every event, in objects that may sit next
/// to another host's in memory while the two run on different threads (Timeline.cs; KTimer, a wire's
/// lanes). Memory only: no barrier, no atomicity.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct Padded<T> where T : unmanaged
{
#pragma warning disable CS0169 // the padding is never read: it only keeps other data off the value's lines
    private CacheLine _before;
    /// <summary>The padded value.</summary>
    public T Value;
    private CacheLine _after;
#pragma warning restore CS0169
}

/// <summary>64 bytes, the cache line of the x86-64 and arm64 cores this runs on.</summary>
[InlineArray(8)]
public struct CacheLine
{
    /// <summary>The line's size in bytes.</summary>
    public const int Size = 64;

    private long _element;

    /// <summary>The index of the first element of <paramref name="pinned"/> that starts a line (the
    /// array must be pinned, or the answer may change as the GC moves it).</summary>
    public static unsafe int FirstAligned<T>(T[] pinned) where T : unmanaged
    {
        nint address = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(pinned));
        return (int)((Size - (address & (Size - 1))) & (Size - 1)) / sizeof(T);
    }
}
