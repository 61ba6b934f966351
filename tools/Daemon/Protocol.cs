using System.Buffers.Binary;
using System.Text;

namespace SmartOS.Cli.Daemon;

/// <summary>
/// The daemon's framed protocol on its Unix socket: each frame is a type byte, a 32-bit big-endian
/// payload length and the payload, at most <see cref="MaxPayload"/> bytes (the limit of
/// CommandInput: a larger frame is refused with a message saying so, and the connection closed).
///
/// Client to server: W (working directory), optionally S (the client has a standard input), then A
/// (argv, NUL-separated), which starts the command; afterwards I (standard input bytes, answering an
/// R; an empty I is end of input) and C (cancel, as Ctrl-C).
/// Server to client: O (stdout bytes) and E (stderr bytes) as the command writes them, R (a 32-bit
/// big-endian count: read at most that many bytes of standard input and send them as one I), and X
/// (the exit status, 32-bit big-endian), which ends the command.
///
/// Input is pulled, not pushed: the client reads its standard input only when the command asks for
/// more, so a command that never reads it leaves it alone (as a local shell would), the server holds
/// at most what it asked for, and C frames are never stuck behind megabytes of input.
/// </summary>
public static class Protocol
{
    public const byte WorkingDirectory = (byte)'W';
    public const byte HasStdin = (byte)'S';
    public const byte Stdin = (byte)'I';
    public const byte Argv = (byte)'A';
    public const byte Cancel = (byte)'C';
    public const byte Stdout = (byte)'O';
    public const byte Stderr = (byte)'E';
    public const byte ReadRequest = (byte)'R';
    public const byte Exit = (byte)'X';

    /// <summary>Frames larger than this are refused (a bad peer must not make us allocate without bound).</summary>
    public const int MaxPayload = CommandInput.MaxBytes;

    /// <summary>The most stdin or stdout bytes one frame carries.</summary>
    public const int Chunk = 64 * 1024;

    public const string SocketName = "smartos.sock";

    /// <summary>What a peer is told about a frame over the limit.</summary>
    public static string TooLarge(long length) => $"a frame of {length} bytes is larger than {CommandInput.MaxBytesText}, the most the socket takes";

    public static void Write(Stream s, byte type, ReadOnlySpan<byte> payload)
    {
        Span<byte> header = stackalloc byte[5];
        header[0] = type;
        BinaryPrimitives.WriteInt32BigEndian(header[1..], payload.Length);
        s.Write(header);
        s.Write(payload);
        s.Flush();
    }

    public static void WriteString(Stream s, byte type, string text) => Write(s, type, Encoding.UTF8.GetBytes(text));

    public static byte[] Int32(int value)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(b, value);
        return b;
    }

    /// <summary>A frame as one buffer (header and payload), for one write on a socket.</summary>
    public static byte[] Frame(byte type, ReadOnlySpan<byte> payload)
    {
        var frame = new byte[5 + payload.Length];
        frame[0] = type;
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(1), payload.Length);
        payload.CopyTo(frame.AsSpan(5));
        return frame;
    }

    /// <summary>Reads one frame; null at a clean end of stream. Throws InvalidDataException on a bad frame.</summary>
    public static (byte Type, byte[] Payload)? Read(Stream s)
    {
        Span<byte> header = stackalloc byte[5];
        int got = 0;
        while (got < 5)
        {
            int n = s.Read(header[got..]);
            if (n == 0)
            {
                if (got == 0) return null;
                throw new InvalidDataException("truncated frame header");
            }
            got += n;
        }
        var payload = new byte[CheckLength(BinaryPrimitives.ReadInt32BigEndian(header[1..]))];
        s.ReadExactly(payload);
        return (header[0], payload);
    }

    /// <summary>As <see cref="Read"/>, without holding a thread while the peer is silent.</summary>
    public static async ValueTask<(byte Type, byte[] Payload)?> ReadAsync(Stream s, CancellationToken cancel)
    {
        var header = new byte[5];
        int got = 0;
        while (got < 5)
        {
            int n = await s.ReadAsync(header.AsMemory(got), cancel).ConfigureAwait(false);
            if (n == 0)
            {
                if (got == 0) return null;
                throw new InvalidDataException("truncated frame header");
            }
            got += n;
        }
        var payload = new byte[CheckLength(BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(1)))];
        await s.ReadExactlyAsync(payload, cancel).ConfigureAwait(false);
        return (header[0], payload);
    }

    private static int CheckLength(int length)
    {
        if (length < 0 || length > MaxPayload) throw new InvalidDataException(TooLarge((uint)length));
        return length;
    }

    public static string[] DecodeArgv(byte[] payload)
        => payload.Length == 0 ? [] : Encoding.UTF8.GetString(payload).Split('\0');

    public static byte[] EncodeArgv(IEnumerable<string> argv) => Encoding.UTF8.GetBytes(string.Join('\0', argv));
}
