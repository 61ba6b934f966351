using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Netstack.Tcp;

namespace SmartOS.Netstack;

/// <summary>The control connection's messages: state bytes and length-prefixed JSON (parameters
/// and results), as iperf3 exchanges them.</summary>
public static partial class Iperf
{
    private static async ValueTask<int> ReadState(SocketReader reader)
    {
        var b = new byte[1];
        try { return await reader.ReadExactAsync(b) ? b[0] : -1; }
        catch (TcpException) { return -1; }
    }

    private static async Task SendJson(TcpSocket sock, string json)
    {
        byte[] body = Encoding.UTF8.GetBytes(json);
        var msg = new byte[4 + body.Length];
        BinaryPrimitives.WriteInt32BigEndian(msg, body.Length);
        body.CopyTo(msg, 4);
        await sock.SendAsync(msg);
    }

    private static async Task<JsonElement?> ReadJson(SocketReader reader)
    {
        var len = new byte[4];
        if (!await reader.ReadExactAsync(len)) return null;
        int n = BinaryPrimitives.ReadInt32BigEndian(len);
        if (n <= 0 || n > 1 << 20) return null;
        var body = new byte[n];
        if (!await reader.ReadExactAsync(body)) return null;
        try { return JsonDocument.Parse(body).RootElement.Clone(); }
        catch (JsonException) { return null; }
    }

    private static string ResultsJson(Test test)
    {
        var st = test.Stats;
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteNumber("cpu_util_total", 0);
            w.WriteNumber("cpu_util_user", 0);
            w.WriteNumber("cpu_util_system", 0);
            w.WriteNumber("sender_has_retransmits", test.Sending && !test.Settings.Udp ? 1 : 0);
            w.WriteString("congestion_used", "newreno");
            w.WriteStartArray("streams");
            int count = Math.Max(1, test.Streams.Count);
            for (int i = 0; i < count; i++)
            {
                var one = test.Streams.Count > 0 ? test.Streams[i].Stats : st;
                w.WriteStartObject();
                // iperf3 numbers its streams 1, 3, 4, 5, ... (iperf_add_stream) and matches results by id.
                w.WriteNumber("id", i == 0 ? 1 : i + 2);
                w.WriteNumber("bytes", one.Bytes);
                w.WriteNumber("retransmits", test.Sending && test.Streams.Count > 0 ? test.Streams[i].Tcp.Retransmits : -1);
                w.WriteNumber("jitter", one.Jitter);
                w.WriteNumber("errors", one.Lost);
                w.WriteNumber("omitted_errors", 0);
                w.WriteNumber("packets", one.Packets);
                w.WriteNumber("omitted_packets", 0);
                w.WriteNumber("start_time", 0);
                w.WriteNumber("end_time", (st.End - st.Start) / (double)Time.Second);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }
}
