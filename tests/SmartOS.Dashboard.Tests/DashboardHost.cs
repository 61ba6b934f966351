using System.Net;
using System.Net.Http.Headers;
using SmartOS.Cli.Dashboard;
using SmartOS.Testing;

namespace SmartOS.Dashboard.Tests;

/// <summary>
/// A host in real time with two tenants and the dashboard on a loopback port, as `smartos boot
/// --http 0` makes it: an etherstub stub0 with VNICs a0 and b0 over it, zones tenant-a and
/// tenant-b (joyent) on them, running. A third VNIC, spare0, belongs to no zone. Tests share one
/// (setting it up is most of their time); each leaves it as it found it.
/// </summary>
internal sealed class DashboardHost : IAsyncDisposable
{
    public const string Token = "0123456789abcdef0123456789abcdef";

    private DashboardHost(RealTimeHost host, DashboardServer server)
    {
        Host = host;
        Server = server;
        Address = server.Address!;
        Client = new HttpClient { BaseAddress = Address, Timeout = TimeSpan.FromSeconds(30) };
        Client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token);
    }

    public RealTimeHost Host { get; }
    public DashboardServer Server { get; }
    public Uri Address { get; }

    /// <summary>A client that sends the token.</summary>
    public HttpClient Client { get; }

    public static async Task<DashboardHost> StartAsync(DashboardOptions? options = null)
    {
        var host = new RealTimeHost(nics: 1);
        try
        {
            host.Ok("dladm", "create-etherstub", "stub0");
            foreach (string t in new[] { "a", "b" })
            {
                host.Ok("dladm", "create-vnic", "-l", "stub0", t + "0");
                host.Ok("zonecfg", "-z", "tenant-" + t, $"create; set zonepath=/zones/tenant-{t}; add net; set physical={t}0; end; add capped-memory; set physical=256m; end");
                host.Ok("zoneadm", "-z", "tenant-" + t, "install");
                host.Ok("zoneadm", "-z", "tenant-" + t, "boot");
            }
            host.Ok("dladm", "create-vnic", "-l", "stub0", "spare0");
            var server = new DashboardServer(host.World, host.Host, options ?? new DashboardOptions
            {
                Endpoint = new IPEndPoint(IPAddress.Loopback, 0), Token = Token,
            });
            await server.StartAsync();
            return new DashboardHost(host, server);
        }
        catch
        {
            host.Dispose();
            throw;
        }
    }

    /// <summary>Where screenshots and downloads go for CI's artifacts: out/ at the repository's root.</summary>
    public static string OutDirectory()
    {
        var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "SmartOS.sln"))) dir = dir.Parent;
        string path = Path.Combine(dir?.FullName ?? TestContext.CurrentContext.TestDirectory, "out", "dashboard");
        Directory.CreateDirectory(path);
        return path;
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Server.DisposeAsync();
        Host.Dispose();
    }
}
