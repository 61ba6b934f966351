using System.Globalization;
using System.Security.Cryptography;
using SmartOS.Kernel;
using SmartOS.Storage;

namespace SmartOS.Cli.Commands;

/// <summary>
/// The commands that move file bytes: cat, dd, mkfile and digest (illumos's usr/src/cmd/cat, dd,
/// mkfile, digest), over the host's mounts (Files.cs). Standard input and output are bytes (Dispatcher
/// rule 5): cat and dd stream them a buffer at a time, so any length passes in bounded memory; dd
/// prints its record counts on standard error as "N+M records in" / "N+M records out".
/// </summary>
public static partial class FileData
{
    public static readonly CommandDescriptor CatDescriptor = new("cat", "concatenate and display files", Cat)
    { Options = "usvtebn", ReadsStdin = true };

    public static readonly CommandDescriptor DdDescriptor = new("dd", "convert and copy a file", Dd)
    { ReadsStdin = true };

    public static readonly CommandDescriptor MkfileDescriptor = new("mkfile", "create a file", Mkfile)
    { Options = "nv" };

    public static readonly CommandDescriptor DigestDescriptor = new("digest", "calculate a message digest", Digest)
    { Options = "la:v", ReadsStdin = true };

    private const int BufferSize = 128 * 1024;

    /// <summary>Opens a regular file of the tree for reading: its file system and inode.</summary>
    private static StorageStatus OpenRead(FileTree tree, string path, out ZplFileSystem fs, out long inode)
    {
        fs = null!;
        inode = 0;
        var status = tree.Stat(path, true, out var attributes, out var mount, out string inner);
        if (status != StorageStatus.Ok) return status;
        if (attributes.Type == FileType.Directory) return StorageStatus.IsDirectory;
        fs = mount.FileSystem;
        inode = attributes.Inode;
        return StorageStatus.Ok;
    }

    /// <summary>Fills buffer from a stream until it is full or the stream ends (deterministic records).</summary>
    private static async Task<int> Fill(Stream stream, Memory<byte> buffer, CancellationToken cancel)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = await stream.ReadAsync(buffer[total..], cancel);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    // ---- cat ----

    private static async Task<int> Cat(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, ":" + CatDescriptor.Options);
        bool silent = g.Has("s");
        if (g.Error != null)
        {
            if (!silent)
            {
                ctx.Err.WriteLine($"cat: illegal option -- {g.ErrorOption}");
                ctx.Err.WriteLine("usage: cat [ -usvtebn ] [-|file] ...");
            }
            return 2;
        }
        // -n, -b, -v (with -t, -e): vncat, a line at a time; otherwise the bytes as they are.
        var visible = g.Has("n") || g.Has("b") || g.Has("v")
            ? new Visible(g.Has("v"), g.Has("t"), g.Has("e"), g.Has("n") || g.Has("b"), g.Has("b")) : null;
        if (FileTree.Open(ctx, "cat") is not { } tree) return 1;
        var buffer = new byte[BufferSize];
        int code = 0;
        var operands = g.Operands.Count == 0 ? ["-"] : g.Operands;
        async Task Emit(int n)
        {
            if (visible is null) await ctx.StdoutBytes.WriteAsync(buffer.AsMemory(0, n), ctx.Cancel);
            else await ctx.StdoutBytes.WriteAsync(visible.Convert(buffer.AsSpan(0, n)), ctx.Cancel);
        }
        foreach (string operand in operands)
        {
            if (operand == "-")
            {
                if (ctx.StdinBytes is null) continue;
                int n;
                while ((n = await ctx.StdinBytes.ReadAsync(buffer, ctx.Cancel)) > 0) await Emit(n);
                continue;
            }
            var status = OpenRead(tree, operand, out var fs, out long inode);
            if (status == StorageStatus.IsDirectory)
            {
                // fopen opens a directory; its first read fails (cat's "input error").
                if (!silent) ctx.Err.WriteLine($"cat: input error on {operand}: {FileTree.Strerror(status)}");
                code = Math.Max(code, 1);
                continue;
            }
            if (status != StorageStatus.Ok)
            {
                if (!silent) ctx.Err.WriteLine($"cat: cannot open {operand}: {FileTree.Strerror(status)}");
                code = 2;
                continue;
            }
            for (long at = 0; ; at += buffer.Length)
            {
                var read = fs.Read(inode, at, buffer, out int n);
                if (!read.IsOk)
                {
                    if (!silent) ctx.Err.WriteLine($"cat: input error on {operand}: {FileTree.Strerror(read.Status)}");
                    code = Math.Max(code, 1);
                    break;
                }
                if (n == 0) break;
                await Emit(n);
            }
        }
        return tree.Finish(code);
    }

    /// <summary>
    /// vncat in the C locale: line numbers ("%6d\t", -b skips empty lines), control characters as ^X
    /// (tab and form feed only with -t), DEL as ^?, bytes with the top bit as M- and the rest, "$"
    /// before each newline with -e. State carries across buffers.
    /// </summary>
    private sealed class Visible(bool visible, bool tabs, bool ends, bool number, bool skipBlank)
    {
        private readonly MemoryStream _out = new();
        private bool _lineStart = true;
        private int _line = 1;

        public ReadOnlyMemory<byte> Convert(ReadOnlySpan<byte> input)
        {
            _out.SetLength(0);
            foreach (byte b in input)
            {
                if (b == (byte)'\n')
                {
                    if (number && _lineStart && !skipBlank) Number();
                    _lineStart = true;
                    if (visible && ends) _out.WriteByte((byte)'$');
                    _out.WriteByte(b);
                    continue;
                }
                if (number && _lineStart) Number();
                _lineStart = false;
                int c = b;
                if (visible && c >= 0x80) { _out.WriteByte((byte)'M'); _out.WriteByte((byte)'-'); c -= 0x80; }
                bool control = c < 0x20 || c == 0x7F;
                if (!visible || !control || ((c == '\t' || c == '\f') && !tabs)) { _out.WriteByte((byte)c); continue; }
                _out.WriteByte((byte)'^');
                _out.WriteByte((byte)(c ^ 0x40));
            }
            return _out.GetBuffer().AsMemory(0, (int)_out.Length);
        }

        private void Number()
        {
            byte[] text = System.Text.Encoding.ASCII.GetBytes(_line++.ToString(CultureInfo.InvariantCulture).PadLeft(6) + "\t");
            _out.Write(text);
        }
    }

    // ---- mkfile ----

    private static Task<int> Mkfile(CommandContext ctx, string[] args)
    {
        const string usage = "Usage: mkfile [-nv] <size>[g|k|b|m] <name1> [<name2>] ...";
        var g = Getopt.Parse(args, ":" + MkfileDescriptor.Options);
        if (g.Error != null || g.Operands.Count < 2)
        {
            if (g.Error != null) ctx.Err.WriteLine($"mkfile: illegal option -- {g.ErrorOption}");
            ctx.Err.WriteLine(usage);
            return Task.FromResult(1);
        }
        if (!SizeArgument.TryParse(g.Operands[0], "gkbm", out long size) || size > ObjectSet.MaxObjectSize)
        {
            ctx.Err.WriteLine($"mkfile: invalid size: {g.Operands[0]}");
            ctx.Err.WriteLine(usage);
            return Task.FromResult(1);
        }
        if (FileTree.Open(ctx, "mkfile") is not { } tree) return Task.FromResult(1);
        int code = 0;
        var zeros = new byte[BufferSize];
        foreach (string operand in g.Operands.Skip(1))
        {
            var status = MakeFile(tree, operand, size, !g.Has("n"), zeros);
            if (status != StorageStatus.Ok)
            {
                ctx.Err.WriteLine($"{operand}: {FileTree.Strerror(status)}");
                code = 1;
                continue;
            }
            if (g.Has("v")) ctx.Out.WriteLine($"{operand} {size.ToString(CultureInfo.InvariantCulture)} bytes");
        }
        return Task.FromResult(tree.Finish(code));
    }

    /// <summary>Creates or truncates a file to size: written with zeros, or (-n) only its size set, a hole.</summary>
    private static StorageStatus MakeFile(FileTree tree, string path, long size, bool write, byte[] zeros)
    {
        var status = CreateOrOpen(tree, path, out var fs, out long inode);
        if (status != StorageStatus.Ok) return status;
        status = fs.Truncate(inode, 0).Status;
        for (long at = 0; status == StorageStatus.Ok && write && at < size; at += zeros.Length)
            status = fs.Write(inode, at, zeros.AsSpan(0, (int)Math.Min(zeros.Length, size - at))).Status;
        return status == StorageStatus.Ok ? fs.Truncate(inode, size).Status : status;
    }

    /// <summary>open(O_WRONLY|O_CREAT): an existing regular file, or a new one (mode 0644).</summary>
    private static StorageStatus CreateOrOpen(FileTree tree, string path, out ZplFileSystem fs, out long inode)
    {
        fs = null!;
        inode = 0;
        var status = tree.Stat(path, true, out var attributes, out var mount, out string inner, write: true);
        if (status == StorageStatus.Ok)
        {
            if (attributes.Type == FileType.Directory) return StorageStatus.IsDirectory;
            if (mount.ReadOnly) return StorageStatus.ReadOnly;
            fs = mount.FileSystem;
            inode = attributes.Inode;
            return StorageStatus.Ok;
        }
        if (status != StorageStatus.NoSuchObject) return status;
        status = tree.Locate(path, true, true, out mount, out inner);
        if (status != StorageStatus.Ok) return status;
        fs = mount.FileSystem;
        return fs.CreateFile(inner, FileTree.FileMode, 0, 0, out inode).Status;
    }

    // ---- digest ----

    private static readonly string[] s_algorithms = ["sha1", "md5", "sha256", "sha384", "sha512"];

    private static HashAlgorithmName? Algorithm(string name) => name switch
    {
        "md5" => HashAlgorithmName.MD5,
        "sha1" => HashAlgorithmName.SHA1,
        "sha256" => HashAlgorithmName.SHA256,
        "sha384" => HashAlgorithmName.SHA384,
        "sha512" => HashAlgorithmName.SHA512,
        _ => null,
    };

    private static async Task<int> Digest(CommandContext ctx, string[] args)
    {
        const string usage = "usage: digest -l | [-v] -a <algorithm> [file...]";
        var g = Getopt.Parse(args, ":" + DigestDescriptor.Options);
        if (g.Error != null) { ctx.Err.WriteLine(usage); return 2; }
        if (g.Has("l"))
        {
            foreach (string a in s_algorithms) ctx.Out.WriteLine(a);
            return 0;
        }
        if (g.Value("a") is not string name) { ctx.Err.WriteLine(usage); return 2; }
        if (Algorithm(name) is not HashAlgorithmName algorithm)
        {
            ctx.Err.WriteLine($"digest: unknown algorithm -- {name}");
            return 2;
        }
        if (FileTree.Open(ctx, "digest") is not { } tree) return 1;
        var buffer = new byte[BufferSize];
        int code = 0;
        bool named = g.Operands.Count > 1;
        if (g.Operands.Count == 0)
        {
            using var hash = IncrementalHash.CreateHash(algorithm);
            if (ctx.StdinBytes is not null)
            {
                int n;
                while ((n = await ctx.StdinBytes.ReadAsync(buffer, ctx.Cancel)) > 0) hash.AppendData(buffer, 0, n);
            }
            ctx.Out.WriteLine((g.Has("v") ? $"{name} (stdin) = " : "") + Convert.ToHexStringLower(hash.GetHashAndReset()));
            return 0;
        }
        foreach (string operand in g.Operands)
        {
            using var hash = IncrementalHash.CreateHash(algorithm);
            var status = OpenRead(tree, operand, out var fs, out long inode);
            for (long at = 0; status == StorageStatus.Ok; at += buffer.Length)
            {
                var read = fs.Read(inode, at, buffer, out int n);
                status = read.Status;
                if (!read.IsOk || n == 0) break;
                hash.AppendData(buffer, 0, n);
            }
            if (status != StorageStatus.Ok)
            {
                ctx.Err.WriteLine($"digest: {operand}: {FileTree.Strerror(status)}");
                code = 1;
                continue;
            }
            string hex = Convert.ToHexStringLower(hash.GetHashAndReset());
            ctx.Out.WriteLine(g.Has("v") ? $"{name} ({operand}) = {hex}" : named ? $"({operand}) = {hex}" : hex);
        }
        return tree.Finish(code);
    }

    // ---- dd ----

    private sealed class DdOptions
    {
        public string? Input, Output;
        public long Ibs = 512, Obs = 512, Count = -1, Skip, Seek;
        public bool NoTrunc, Sync;
    }

    /// <summary>dd's numbers: digits with k, b, w, m or g, products with x ("2x512k").</summary>
    private static bool DdNumber(string text, out long value)
    {
        value = 1;
        foreach (string part in text.Split('x'))
        {
            if (!SizeArgument.TryParse(part, "kbwmg", out long n)) return false;
            try { value = checked(value * n); } catch (OverflowException) { return false; }
        }
        return true;
    }

    private static string? ParseDd(string[] args, DdOptions o)
    {
        bool bs = false;
        foreach (string arg in args)
        {
            int eq = arg.IndexOf('=');
            if (eq <= 0) return $"bad argument: \"{arg}\"";
            string key = arg[..eq], value = arg[(eq + 1)..];
            long n = 0;
            if (key is "bs" or "ibs" or "obs" or "count" or "skip" or "iseek" or "seek" or "oseek")
            {
                if (!DdNumber(value, out n) || (key is "bs" or "ibs" or "obs" && (n <= 0 || n > 64L << 20))) return $"bad numeric argument: \"{value}\"";
            }
            switch (key)
            {
                case "if": o.Input = value; break;
                case "of": o.Output = value; break;
                case "bs": o.Ibs = o.Obs = n; bs = true; break;
                case "ibs": if (!bs) o.Ibs = n; break;
                case "obs": if (!bs) o.Obs = n; break;
                case "count": o.Count = n; break;
                case "skip" or "iseek": o.Skip = n; break;
                case "seek" or "oseek": o.Seek = n; break;
                case "conv":
                    foreach (string c in value.Split(','))
                    {
                        if (c == "notrunc") o.NoTrunc = true;
                        else if (c == "sync") o.Sync = true;
                        else return $"bad argument: \"conv={c}\" (only notrunc and sync are supported)";
                    }
                    break;
                default: return $"bad argument: \"{arg}\"";
            }
        }
        return null;
    }

    private static async Task<int> Dd(CommandContext ctx, string[] args)
    {
        var o = new DdOptions();
        if (ParseDd(args, o) is string bad)
        {
            ctx.Err.WriteLine($"dd: {bad}");
            return 2;
        }
        // A volume's device node is the global zone's (a zone has no /dev/zvol here).
        if (ctx.Zone == "global" && ZvolOf(o.Output) is string volume) return await DdToVolumeAsync(ctx, o, volume);
        if (FileTree.Open(ctx, "dd") is not { } tree) return 1;
        ZplFileSystem? inFs = null, outFs = null;
        long inInode = 0, outInode = 0;
        if (o.Input is not null)
        {
            var status = OpenRead(tree, o.Input, out inFs, out inInode);
            if (status != StorageStatus.Ok) { ctx.Err.WriteLine($"dd: {o.Input}: open: {FileTree.Strerror(status)}"); return 2; }
        }
        if (o.Output is not null)
        {
            var status = CreateOrOpen(tree, o.Output, out outFs, out outInode);
            if (status == StorageStatus.Ok && !o.NoTrunc)
            {
                outFs.GetAttributes(outInode, out var a);
                if (a.Size > o.Seek * o.Obs) status = outFs.Truncate(outInode, o.Seek * o.Obs).Status;
            }
            if (status != StorageStatus.Ok) { ctx.Err.WriteLine($"dd: {o.Output}: open: {FileTree.Strerror(status)}"); return tree.Finish(2); }
        }
        else if (o.Seek > 0)
        {
            ctx.Err.WriteLine("dd: seek= needs of=: standard output cannot seek here");
            return 2;
        }
        var ibuf = new byte[o.Ibs];
        var obuf = o.Ibs == o.Obs ? ibuf : new byte[o.Obs];
        int held = 0;
        long inPos = o.Skip * o.Ibs, outPos = o.Seek * o.Obs;
        long fullIn = 0, partIn = 0, fullOut = 0, partOut = 0;
        int code = 0;
        if (inFs is null && ctx.StdinBytes is not null)
            for (long skipped = 0; skipped < o.Skip; skipped++)
                if (await Fill(ctx.StdinBytes, ibuf, ctx.Cancel) == 0) break;

        async Task<bool> Emit(ReadOnlyMemory<byte> data)
        {
            if (data.Length == o.Obs) fullOut++; else partOut++;
            if (outFs is null) { await ctx.StdoutBytes.WriteAsync(data, ctx.Cancel); return true; }
            var written = outFs.Write(outInode, outPos, data.Span);
            outPos += data.Length;
            if (written.IsOk) return true;
            ctx.Err.WriteLine($"dd: {o.Output}: write error: {FileTree.Strerror(written.Status)}");
            return false;
        }

        for (long records = 0; o.Count < 0 || records < o.Count; records++)
        {
            int n;
            if (inFs is not null)
            {
                var read = inFs.Read(inInode, inPos, ibuf, out n);
                if (!read.IsOk) { ctx.Err.WriteLine($"dd: {o.Input}: read error: {FileTree.Strerror(read.Status)}"); code = 2; break; }
                inPos += n;
            }
            else n = ctx.StdinBytes is null ? 0 : await Fill(ctx.StdinBytes, ibuf, ctx.Cancel);
            if (n == 0) break;
            if (n == ibuf.Length) fullIn++; else partIn++;
            if (o.Sync && n < ibuf.Length) { Array.Clear(ibuf, n, ibuf.Length - n); n = ibuf.Length; }
            if (ReferenceEquals(obuf, ibuf))
            {
                if (!await Emit(ibuf.AsMemory(0, n))) { code = 2; break; }
                continue;
            }
            for (int at = 0; at < n;)
            {
                int take = Math.Min(n - at, obuf.Length - held);
                Array.Copy(ibuf, at, obuf, held, take);
                held += take;
                at += take;
                if (held == obuf.Length)
                {
                    if (!await Emit(obuf)) { code = 2; break; }
                    held = 0;
                }
            }
            if (code != 0) break;
        }
        if (code == 0 && held > 0 && !await Emit(obuf.AsMemory(0, held))) code = 2;
        ctx.Err.WriteLine($"{fullIn}+{partIn} records in");
        ctx.Err.WriteLine($"{fullOut}+{partOut} records out");
        return tree.Finish(code);
    }
}
