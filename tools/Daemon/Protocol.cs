using System.Buffers.Binary;
using System.Text;

namespace SmartOS.Cli.Daemon;

/// <summary>
/// The daemon's framed protocol on its Unix socket: each frame is a type byte, a 32-bit big-endian
/// payload length and the payload. The client sends W (working directory), optionally I (standard
/// input), then A (argv, NUL-separated) which starts the command, and C to cancel it (Ctrl-C). The
/// server streams O (stdout bytes) and E (stderr bytes) as the command writes them and ends with X
/// (the exit status, 32-bit big-endian).
/// </summary>
public static class Protocol
{
    public const byte WorkingDirectory = (byte)'W';
    public const byte Stdin = (byte)'I';
    public const byte Argv = (byte)'A';
    public const byte Cancel = (byte)'C';
    public const byte Stdout = (byte)'O';
    public const byte Stderr = (byte)'E';
    public const byte Exit = (byte)'X';

    /// <summary>Frames larger than this are refused (a bad peer must not make us allocate without bound).</summary>
    public const int MaxPayload = 16 << 20;

    public const string SocketName = "smartos.sock";

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

    public static void WriteExit(Stream s, int code)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(b, code);
        Write(s, Exit, b);
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
        int length = BinaryPrimitives.ReadInt32BigEndian(header[1..]);
        if (length < 0 || length > MaxPayload) throw new InvalidDataException($"frame of {length} bytes refused");
        var payload = new byte[length];
        s.ReadExactly(payload);
        return (header[0], payload);
    }

    public static string[] DecodeArgv(byte[] payload)
        => payload.Length == 0 ? [] : Encoding.UTF8.GetString(payload).Split('\0');

    public static byte[] EncodeArgv(IEnumerable<string> argv) => Encoding.UTF8.GetBytes(string.Join('\0', argv));
}
