using PacketDotNet;
using SharpPcap;
using SharpPcap.LibPcap;
using SmartOS.Kernel;

namespace SmartOS.Cli.Snoop;

/// <summary>A capture file that cannot be opened or is not a pcap file; Message is what snoop prints.</summary>
public sealed class SnoopFileException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Writes a classic pcap file (Ethernet, snaplen 65535, microsecond stamps) through SharpPcap, so
/// Wireshark and tshark read it. Timestamps are the caller's virtual time, so the same frames and
/// times give the same bytes (SnoopFilter.cs rule 4): libpcap's dumper writes no wall-clock field.
/// </summary>
public sealed class PcapFileWriter : IDisposable
{
    public const int Snaplen = 65535;
    private readonly CaptureFileWriterDevice _device;
    private bool _disposed;

    public PcapFileWriter(string path)
    {
        try
        {
            _device = new CaptureFileWriterDevice(path, FileMode.Create);
            _device.Open(new DeviceConfiguration { LinkLayerType = LinkLayers.Ethernet, Snaplen = Snaplen });
        }
        catch (Exception e) when (e is PcapException or IOException or UnauthorizedAccessException or DllNotFoundException)
        {
            throw new SnoopFileException($"{path}: cannot create capture file ({e.Message})", e);
        }
    }

    /// <summary>Appends one frame stamped with virtual time (nanoseconds; stored to the microsecond).</summary>
    public void Write(ReadOnlySpan<byte> frame, long timestampNs)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (timestampNs < 0) timestampNs = 0;
        var time = new PosixTimeval((ulong)(timestampNs / Time.Second), (ulong)(timestampNs % Time.Second / Time.Microsecond));
        _device.Write(new RawCapture(LinkLayers.Ethernet, time, frame.ToArray()));
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _device.Close();
    }
}

/// <summary>Reads the frames of a pcap file written by PcapFileWriter, Wireshark or tcpdump.</summary>
public static class PcapFileReader
{
    /// <summary>
    /// Opens the file now (a missing or non-pcap file throws SnoopFileException here, not on the
    /// first MoveNext) and yields each frame with its time in nanoseconds.
    /// </summary>
    public static IEnumerable<(long TimestampNs, byte[] Frame)> Read(string path)
    {
        if (!File.Exists(path)) throw new SnoopFileException($"{path}: No such file or directory");
        var device = new CaptureFileReaderDevice(path);
        try
        {
            device.Open();
        }
        catch (Exception e) when (e is PcapException or IOException or DllNotFoundException)
        {
            device.Close();
            throw new SnoopFileException($"{path}: not a capture file", e);
        }
        return Frames(device);
    }

    private static IEnumerable<(long TimestampNs, byte[] Frame)> Frames(CaptureFileReaderDevice device)
    {
        try
        {
            while (device.GetNextPacket(out PacketCapture capture) == GetPacketStatus.PacketRead)
            {
                var raw = capture.GetPacket();
                long ns = (long)raw.Timeval.Seconds * Time.Second + (long)raw.Timeval.MicroSeconds * Time.Microsecond;
                yield return (ns, raw.Data);
            }
        }
        finally
        {
            device.Close();
        }
    }
}
