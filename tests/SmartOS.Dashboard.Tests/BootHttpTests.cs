using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using SmartOS.Cli.Dashboard;

namespace SmartOS.Dashboard.Tests;

/// <summary>`smartos boot --http`: the option, the token file, the printed address, as a child
/// process (every wait bounded, the process killed in teardown); and the endpoint parser.</summary>
[NonParallelizable]
public class BootHttpTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);
    private string _root = "";
    private Process? _boot;

    [SetUp]
    public void MakeRoot() => _root = Directory.CreateTempSubdirectory("smartos-http-").FullName;

    [TearDown]
    public void Cleanup()
    {
        if (_boot != null)
        {
            try { if (!_boot.HasExited) _boot.Kill(entireProcessTree: true); }
            catch (InvalidOperationException) { }
            _boot.Dispose();
        }
        Directory.Delete(_root, recursive: true);
    }

    private Process Boot(params string[] http)
    {
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (string a in (string[])[Path.Combine(AppContext.BaseDirectory, "smartos.dll"), "boot", "--root", _root, "--zones-size", "64m", .. http])
            psi.ArgumentList.Add(a);
        _boot = Process.Start(psi)!;
        return _boot;
    }

    [Test]
    public async Task Boot_with_http_writes_a_private_token_prints_the_address_and_serves_with_it_only()
    {
        var p = Boot("--http", "0");
        var first = p.StandardOutput.ReadLineAsync();
        Assert.That(first.Wait(s_wait), Is.True, "boot printed nothing");
        string line = first.Result ?? "";
        Assert.That(line, Does.Match(@"^smartos: dashboard on http://127\.0\.0\.1:\d+/\?token=[0-9a-f]{64} \(token in .*/http\.token\)$"),
            () => p.HasExited ? p.StandardError.ReadToEnd() : line);
        string tokenFile = Path.Combine(_root, "http.token");
        string token = File.ReadAllText(tokenFile).Trim();
        var address = new Uri(line.Split(' ')[3].Split('?')[0]);
        using var client = new HttpClient { BaseAddress = address };
        using var without = await client.GetAsync("api/links");
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var with = await client.GetAsync("api/links");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(line, Does.Contain("?token=" + token + " "));
            if (!OperatingSystem.IsWindows())
                Assert.That(File.GetUnixFileMode(tokenFile), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
            Assert.That(without.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
            Assert.That(with.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(await with.Content.ReadAsStringAsync(), Does.Contain("\"name\":\"e1000g0\""));
        }
        using (var term = Process.Start("kill", ["-TERM", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!) term.WaitForExit(s_wait);
        Assert.That(p.WaitForExit(s_wait), Is.True, "boot did not halt on SIGTERM");
        Assert.That(p.ExitCode, Is.Zero);
        Assert.That(File.Exists(tokenFile), Is.False, "the token goes with the server");
    }

    [Test]
    public void Boot_with_a_bad_http_address_says_why_and_starts_nothing()
    {
        var p = Boot("--http", "localhost:99999");
        Assert.That(p.WaitForExit(s_wait), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(p.ExitCode, Is.EqualTo(2));
            Assert.That(p.StandardError.ReadToEnd(), Does.StartWith("smartos boot: --http localhost:99999: bad port '99999' (0 to 65535)\nusage: smartos boot "));
            Assert.That(File.Exists(Path.Combine(_root, "http.token")), Is.False);
        }
    }

    [TestCase("8080", "127.0.0.1:8080")]
    [TestCase("0", "127.0.0.1:0")]
    [TestCase("0.0.0.0:80", "0.0.0.0:80")]
    [TestCase("[::1]:8080", "[::1]:8080")]
    public void An_endpoint_is_a_port_on_loopback_or_an_address_and_a_port(string text, string expected)
    {
        Assert.That(DashboardServer.TryParseEndpoint(text, out var endpoint, out string error), Is.True, error);
        Assert.That(endpoint.ToString(), Is.EqualTo(expected));
    }

    [TestCase("", "bad port ''")]
    [TestCase("http", "bad port 'http'")]
    [TestCase("65536", "bad port '65536'")]
    [TestCase("host:80", "bad address 'host'")]
    [TestCase("::1:80", "bad address '::1'")]
    [TestCase(":80", "bad address ''")]
    public void A_bad_endpoint_is_refused_with_the_reason(string text, string why)
    {
        Assert.That(DashboardServer.TryParseEndpoint(text, out _, out string error), Is.False);
        Assert.That(error, Does.StartWith(why));
    }
}
