using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace SmartOS.Storage.Send;

/// <summary>
/// A name-value list as libnvpair keeps it (nvpair.c), in insertion order, and its two packed forms:
/// XDR (nvlist_pack with NV_ENCODE_XDR), what a replication stream's outer BEGIN carries, and
/// native (NV_ENCODE_NATIVE, fnvlist_pack), what a resume token holds.
///
/// The native form of a little-endian 64-bit host: header 0 (native), 1 (little-endian), 0, 0;
/// int32 nvl_version, uint32 nvl_nvflag; each pair as the nvpair_t it is in memory: int32 nvp_size
/// (the decoded size below), int16 name size (NUL included), int16 0, int32 element count, int32
/// data type, the name and its NUL padded to 8 bytes from the pair's start, the value padded to 8
/// (a uint64 as 8 bytes, a string with its NUL); then an int32 0 ends the list. Nested lists are
/// not used in tokens and are refused in this form.
///
/// The XDR form, every integer big-endian and every string padded with zeros to 4 bytes:
///   header      1 byte encoding (1 = XDR), 1 byte endianness (1 = little; not used by XDR), 2 zero
///   nvlist      int32 nvl_version (0), uint32 nvl_nvflag (NV_UNIQUE_NAME = 1), its pairs, then
///               the end marker: two zero int32s
///   nvpair      int32 encoded size (of this pair, these two sizes included), int32 decoded size
///               (the native nvpair's: NV_ALIGN(16 + name length + 1) + NV_ALIGN(value size), a
///               nested nvlist counting as its 24-byte nvlist_t), then the name (uint32 length,
///               bytes), int32 data type, int32 element count (0 for a boolean flag, 1 otherwise),
///               then the value: uint64 as 8 bytes, a string as its length and bytes, a nested
///               nvlist as above (no header).
/// Only the four types ZFS's send and receive use are kept: DATA_TYPE_BOOLEAN (a flag with no
/// value, 1), DATA_TYPE_UINT64 (8), DATA_TYPE_STRING (9) and DATA_TYPE_NVLIST (19). Decoding checks
/// every length against the buffer, both sizes of every pair (libnvpair's i_validate_nvpair checks
/// the decoded one) and the nesting depth; anything else is a malformed list, never an exception.
/// </summary>
public sealed class NvList
{
    public const int TypeBoolean = 1, TypeUint64 = 8, TypeString = 9, TypeNvList = 19;
    private const int MaxDepth = 32;
    private readonly List<KeyValuePair<string, object>> _pairs = [];

    public IReadOnlyList<KeyValuePair<string, object>> Pairs => _pairs;

    /// <summary>Adds or replaces (NV_UNIQUE_NAME) a pair; value is ulong, string, NvList or <see cref="Flag"/>.</summary>
    public NvList Add(string name, object value)
    {
        if (value is not (ulong or string or NvList or Flag)) throw new ArgumentException($"nvlist value of type {value.GetType().Name}", nameof(value));
        int at = _pairs.FindIndex(p => p.Key == name);
        if (at >= 0) _pairs[at] = new(name, value); else _pairs.Add(new(name, value));
        return this;
    }

    /// <summary>DATA_TYPE_BOOLEAN: a name with no value (libzfs's "not_recursive", "sent").</summary>
    public sealed class Flag
    {
        public static readonly Flag Value = new();
        private Flag() { }
    }

    public bool TryGet<T>(string name, [NotNullWhen(true)] out T? value) where T : class
    {
        foreach (var (k, v) in _pairs)
            if (k == name && v is T t) { value = t; return true; }
        value = null;
        return false;
    }

    public bool TryGetUInt64(string name, out ulong value)
    {
        foreach (var (k, v) in _pairs)
            if (k == name && v is ulong u) { value = u; return true; }
        value = 0;
        return false;
    }

    public bool Has(string name) => _pairs.Exists(p => p.Key == name);

    // ---- XDR ----

    public byte[] PackXdr()
    {
        var output = new List<byte>(256) { 1, 1, 0, 0 };
        WriteXdr(output);
        return [.. output];
    }

    private void WriteXdr(List<byte> o)
    {
        Int(o, 0);
        Int(o, 1);
        foreach (var (name, value) in _pairs)
        {
            Int(o, XdrPairSize(name, value));
            Int(o, NativePairSize(name, value));
            Str(o, name);
            Int(o, TypeOf(value));
            Int(o, value is Flag ? 0 : 1);
            switch (value)
            {
                case ulong u:
                    Int(o, (int)(u >> 32));
                    Int(o, (int)u);
                    break;
                case string s: Str(o, s); break;
                case NvList list: list.WriteXdr(o); break;
            }
        }
        Int(o, 0);
        Int(o, 0);
    }

    private static int TypeOf(object value) => value switch
    {
        ulong => TypeUint64,
        string => TypeString,
        NvList => TypeNvList,
        _ => TypeBoolean,
    };

    private static int Align4(int n) => (n + 3) & ~3;
    private static int Align8(int n) => (n + 7) & ~7;

    /// <summary>nvs_xdr_nvp_size: the bytes this pair takes in XDR.</summary>
    private static int XdrPairSize(string name, object value)
    {
        int size = 4 + 4 + 4 + Align4(Encoding.UTF8.GetByteCount(name)) + 4 + 4;
        return size + value switch
        {
            ulong => 8,
            string s => 4 + Align4(Encoding.UTF8.GetByteCount(s)),
            NvList list => list.XdrListSize(),
            _ => 0,
        };
    }

    private int XdrListSize()
    {
        int size = 8 + 8;
        foreach (var (k, v) in _pairs) size += XdrPairSize(k, v);
        return size;
    }

    /// <summary>NVP_SIZE_CALC on a 64-bit host: the nvpair_t header (16 bytes) and name, then the value.</summary>
    private static int NativePairSize(string name, object value) =>
        Align8(16 + Encoding.UTF8.GetByteCount(name) + 1) + Align8(value switch
        {
            ulong => 8,
            string s => Encoding.UTF8.GetByteCount(s) + 1,
            NvList => 24,
            _ => 0,
        });

    private static void Int(List<byte> o, int v)
    {
        o.Add((byte)(v >> 24)); o.Add((byte)(v >> 16)); o.Add((byte)(v >> 8)); o.Add((byte)v);
    }

    private static void Str(List<byte> o, string s)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(s);
        Int(o, bytes.Length);
        o.AddRange(bytes);
        for (int i = bytes.Length; i % 4 != 0; i++) o.Add(0);
    }

    /// <summary>nvlist_unpack of an XDR-encoded list; problem says what was wrong.</summary>
    public static bool TryUnpackXdr(ReadOnlySpan<byte> data, [NotNullWhen(true)] out NvList? list, [NotNullWhen(false)] out string? problem)
    {
        list = null;
        if (data.Length < 4 || data[0] != 1) { problem = "not an XDR-encoded nvlist"; return false; }
        int at = 4;
        if (!TryReadXdrList(data, ref at, 0, out list, out problem)) return false;
        if (at != data.Length) { list = null; problem = $"{data.Length - at} bytes after the nvlist"; return false; }
        return true;
    }

    private static bool TryReadXdrList(ReadOnlySpan<byte> d, ref int at, int depth, [NotNullWhen(true)] out NvList? list, [NotNullWhen(false)] out string? problem)
    {
        list = null;
        if (depth > MaxDepth) { problem = "nvlists nested too deep"; return false; }
        if (!ReadInt(d, ref at, out int version) || !ReadInt(d, ref at, out int flags)) { problem = "nvlist header cut short"; return false; }
        if (version != 0) { problem = $"nvlist version {version}"; return false; }
        if ((flags & 1) == 0) { problem = "nvlist without NV_UNIQUE_NAME"; return false; }
        var result = new NvList();
        while (true)
        {
            int start = at;
            if (!ReadInt(d, ref at, out int encoded) || !ReadInt(d, ref at, out int decoded)) { problem = "nvpair cut short"; return false; }
            if (encoded == 0 && decoded == 0) break;
            if (!ReadStr(d, ref at, out string? name) || !ReadInt(d, ref at, out int type) || !ReadInt(d, ref at, out int count))
            { problem = "nvpair cut short"; return false; }
            object value;
            switch (type)
            {
                case TypeBoolean when count == 0: value = Flag.Value; break;
                case TypeUint64 when count == 1:
                    if (!ReadInt(d, ref at, out int hi) || !ReadInt(d, ref at, out int lo)) { problem = "nvpair cut short"; return false; }
                    value = ((ulong)(uint)hi << 32) | (uint)lo;
                    break;
                case TypeString when count == 1:
                    if (!ReadStr(d, ref at, out string? s)) { problem = "nvpair cut short"; return false; }
                    value = s;
                    break;
                case TypeNvList when count == 1:
                    if (!TryReadXdrList(d, ref at, depth + 1, out var nested, out problem)) return false;
                    value = nested;
                    break;
                default:
                    problem = $"nvpair '{name}' of data type {type} with {count} elements";
                    return false;
            }
            if (decoded != NativePairSize(name, value) || encoded != at - start)
            {
                problem = $"nvpair '{name}' has sizes {encoded}/{decoded}, not {at - start}/{NativePairSize(name, value)}";
                return false;
            }
            if (result.Has(name)) { problem = $"nvpair '{name}' twice"; return false; }
            result._pairs.Add(new(name, value));
        }
        list = result;
        problem = null;
        return true;
    }

    // ---- native ----

    public byte[] PackNative()
    {
        var o = new List<byte>(256) { 0, 1, 0, 0 };
        Le(o, 0);
        Le(o, 1);
        foreach (var (name, value) in _pairs)
        {
            if (value is NvList) throw new InvalidOperationException("nested nvlists are not packed natively here");
            byte[] n = Encoding.UTF8.GetBytes(name);
            int start = o.Count;
            Le(o, NativePairSize(name, value));
            o.Add((byte)(n.Length + 1)); o.Add((byte)((n.Length + 1) >> 8)); o.Add(0); o.Add(0);
            Le(o, value is Flag ? 0 : 1);
            Le(o, TypeOf(value));
            o.AddRange(n);
            o.Add(0);
            while ((o.Count - start) % 8 != 0) o.Add(0);
            switch (value)
            {
                case ulong u:
                    for (int i = 0; i < 8; i++) o.Add((byte)(u >> (8 * i)));
                    break;
                case string str:
                    o.AddRange(Encoding.UTF8.GetBytes(str));
                    o.Add(0);
                    while ((o.Count - start) % 8 != 0) o.Add(0);
                    break;
            }
        }
        Le(o, 0);
        return [.. o];
    }

    private static void Le(List<byte> o, int v)
    {
        o.Add((byte)v); o.Add((byte)(v >> 8)); o.Add((byte)(v >> 16)); o.Add((byte)(v >> 24));
    }

    /// <summary>nvlist_unpack of a natively packed, little-endian list of flags, uint64s and strings.</summary>
    public static bool TryUnpackNative(ReadOnlySpan<byte> d, [NotNullWhen(true)] out NvList? list, [NotNullWhen(false)] out string? problem)
    {
        list = null;
        if (d.Length < 16 || d[0] != 0) { problem = "not a natively encoded nvlist"; return false; }
        if (d[1] != 1) { problem = "a big-endian nvlist"; return false; }
        if (BinaryPrimitives.ReadInt32LittleEndian(d[4..]) != 0 || (BinaryPrimitives.ReadUInt32LittleEndian(d[8..]) & 1) == 0)
        { problem = "bad nvlist header"; return false; }
        var result = new NvList();
        int at = 12;
        while (true)
        {
            if (d.Length - at < 4) { problem = "nvlist cut short"; return false; }
            int size = BinaryPrimitives.ReadInt32LittleEndian(d[at..]);
            if (size == 0) { at += 4; break; }
            if (size < 24 || size % 8 != 0 || size > d.Length - at) { problem = "nvpair size out of range"; return false; }
            var pair = d.Slice(at, size);
            int nameSize = BinaryPrimitives.ReadInt16LittleEndian(pair[4..]);
            int count = BinaryPrimitives.ReadInt32LittleEndian(pair[8..]), type = BinaryPrimitives.ReadInt32LittleEndian(pair[12..]);
            if (nameSize < 2 || 16 + nameSize > size || pair[16 + nameSize - 1] != 0) { problem = "bad nvpair name"; return false; }
            string name = Encoding.UTF8.GetString(pair.Slice(16, nameSize - 1));
            var valueBytes = pair[Align8(16 + nameSize)..];
            object value;
            switch (type)
            {
                case TypeBoolean when count == 0: value = Flag.Value; break;
                case TypeUint64 when count == 1 && valueBytes.Length >= 8: value = BinaryPrimitives.ReadUInt64LittleEndian(valueBytes); break;
                case TypeString when count == 1 && valueBytes.IndexOf((byte)0) >= 0:
                    value = Encoding.UTF8.GetString(valueBytes[..valueBytes.IndexOf((byte)0)]);
                    break;
                default: problem = $"nvpair '{name}' of data type {type}"; return false;
            }
            if (NativePairSize(name, value) != size || result.Has(name)) { problem = $"nvpair '{name}' is malformed"; return false; }
            result._pairs.Add(new(name, value));
            at += size;
        }
        if (at != d.Length) { problem = "bytes after the nvlist"; return false; }
        list = result;
        problem = null;
        return true;
    }

    private static bool ReadInt(ReadOnlySpan<byte> d, ref int at, out int value)
    {
        value = 0;
        if (at < 0 || d.Length - at < 4) return false;
        value = BinaryPrimitives.ReadInt32BigEndian(d[at..]);
        at += 4;
        return true;
    }

    private static bool ReadStr(ReadOnlySpan<byte> d, ref int at, [NotNullWhen(true)] out string? value)
    {
        value = null;
        if (!ReadInt(d, ref at, out int length) || length < 0 || length > d.Length - at || Align4(length) > d.Length - at) return false;
        var bytes = d.Slice(at, length);
        if (bytes.Contains((byte)0)) return false;
        value = Encoding.UTF8.GetString(bytes);
        at += Align4(length);
        return true;
    }
}
