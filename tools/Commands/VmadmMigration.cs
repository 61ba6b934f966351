using SmartOS.Kernel;
using SmartOS.Zones;

namespace SmartOS.Cli.Commands;

/// <summary>
/// vmadm send and vmadm receive (zones/VmMigration.cs holds the stream's format and rules): send
/// writes the stream to standard output or, with -f, to a file; receive reads it from standard input
/// or, with -f, from a file. Messages are vmadm.js's: "Failed to send VM UUID: why", "Failed to
/// receive VM: why", and "Successfully received VM UUID" on stderr.
/// </summary>
/// <remarks>
/// Rules
///   1. The stream is read whole before anything changes (VmMigration rule 2), off the loop in real
///      time (a pipe may be slow), directly in virtual time; streams over MaxStream are refused.
///   2. send -f writes the file atomically (a temporary file beside it, renamed): a send that fails
///      leaves no file behind, and a receive never sees half a stream.
/// </remarks>
public static class VmadmMigration
{
    /// <summary>The largest stream receive reads (the whole of it is held in memory).</summary>
    public const long MaxStream = 1L << 30;

    public static async Task<int> SendAsync(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "f:", permute: true);
        if (g.Error != null || g.Operands.Count != 1)
        {
            ctx.Err.WriteLine("vmadm: " + (g.Error ?? "send: exactly one UUID is required"));
            return 2;
        }
        string uuid = g.Operands[0];
        var vm = VmModel.Find(ctx.Host, uuid);
        if (vm == null)
        {
            ctx.Err.WriteLine($"Failed to send VM {uuid}: zoneadm: {uuid}: No such zone configured");
            return 1;
        }
        using var stream = new MemoryStream();
        if (VmMigration.Send(ctx.Host, vm, stream) is string error)
        {
            ctx.Err.WriteLine($"Failed to send VM {uuid}: {error}");
            return 1;
        }
        var bytes = stream.GetBuffer().AsMemory(0, (int)stream.Length);
        if (g.Value("f") is string file)
        {
            if (WriteFile(ctx.ResolvePath(file), bytes.Span) is string why)
            {
                ctx.Err.WriteLine($"Failed to send VM {uuid}: unable to write {file}: {why}");
                return 1;
            }
        }
        else await ctx.StdoutBytes.WriteAsync(bytes, ctx.Cancel);
        ctx.Err.WriteLine($"Successfully sent VM {uuid}");
        return 0;
    }

    private static string? WriteFile(string path, ReadOnlySpan<byte> bytes)
    {
        string temp = path + ".tmp";
        try
        {
            using (var f = new FileStream(temp, FileMode.Create, FileAccess.Write))
            {
                f.Write(bytes);
                f.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            File.Delete(temp);
            return e.Message;
        }
    }

    public static async Task<int> ReceiveAsync(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "f:", permute: true);
        if (g.Error != null || g.Operands.Count != 0)
        {
            ctx.Err.WriteLine("vmadm: " + (g.Error ?? "receive: too many arguments"));
            return 2;
        }
        byte[]? data;
        try
        {
            if (g.Value("f") is string file)
            {
                string full = ctx.ResolvePath(file);
                data = ctx.World.Driver == null ? ReadFile(full) : await Task.Run(() => ReadFile(full)).WaitAsync(ctx.Cancel);
            }
            else if (ctx.StdinBytes is Stream stdin)
                data = ctx.World.Driver == null ? ReadAll(stdin) : await Task.Run(() => ReadAll(stdin)).WaitAsync(ctx.Cancel);
            else
            {
                ctx.Err.WriteLine("Failed to receive VM: unable to find JSON in stdin.");
                return 1;
            }
        }
        catch (OperationCanceledException) { return 1; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ctx.Err.WriteLine($"Failed to receive VM: unable to read the stream: {e.Message}");
            return 1;
        }
        if (data == null)
        {
            ctx.Err.WriteLine($"Failed to receive VM: a stream larger than {MaxStream >> 30} GiB is not supported here");
            return 1;
        }
        if (VmMigration.Receive(ctx.Host, data, out string? error) is not string uuid)
        {
            ctx.Err.WriteLine($"Failed to receive VM: {error}");
            return 1;
        }
        ctx.Err.WriteLine($"Successfully received VM {uuid}");
        return 0;
    }

    private static byte[]? ReadFile(string path)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        return ReadAll(f);
    }

    /// <summary>All of a stream, or null past MaxStream.</summary>
    private static byte[]? ReadAll(Stream input) => CommandInput.ReadBytes(input, MaxStream);
}
