using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using SmartOS.Cli.Dashboard;
using SmartOS.Cli.Snoop;

namespace SmartOS.Dashboard.Tests;

/// <summary>The dashboard's HTTP side, with HttpClient (no browser needed): the token, the JSON API,
/// the console, captures, and bad input.</summary>
[NonParallelizable]
public class ApiTests
{
    private DashboardHost _d = null!;

    [OneTimeSetUp]
    public async Task Start() => _d = await DashboardHost.StartAsync();

    [OneTimeTearDown]
    public async Task Stop() => await _d.DisposeAsync();

    private async Task<JsonElement> Json(string path)
    {
        using var r = await _d.Client.GetAsync(path);
        Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.OK), await r.Content.ReadAsStringAsync());
        return JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.Clone();
    }

    private async Task<CommandAnswer> Command(string line)
    {
        using var r = await _d.Client.PostAsJsonAsync("api/command", new { line });
        Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.OK), await r.Content.ReadAsStringAsync());
        return (await r.Content.ReadFromJsonAsync<CommandAnswer>())!;
    }

    /// <summary>Waits (bounded) until a capture's tap is on the link, so what the test sends next is in it.</summary>
    internal static async Task CaptureRunning(DashboardHost d, string link)
    {
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        while (!d.Host.OnLoop(() => d.Host.Host.Mac.Find(link)?.HasTaps ?? false)) await Task.Delay(20, bound.Token);
    }

    [TestCase("api/links")]
    [TestCase("api/topology")]
    [TestCase("api/events")]
    [TestCase("")]
    [TestCase("assets/app.js")]
    public async Task A_request_without_the_token_gets_401_and_a_json_reason(string path)
    {
        using var anonymous = new HttpClient { BaseAddress = _d.Address };
        using var r = await anonymous.GetAsync(path);
        string body = await r.Content.ReadAsStringAsync();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
            Assert.That(r.Headers.WwwAuthenticate.ToString(), Does.StartWith("Bearer"));
            Assert.That(JsonDocument.Parse(body).RootElement.GetProperty("error").GetString(), Does.Contain("token is required"));
        }
    }

    [TestCase("0123456789abcdef0123456789abcdee")]
    [TestCase("0123456789abcdef")]
    [TestCase("")]
    public async Task A_wrong_token_gets_401_as_a_header_a_cookie_or_a_query(string wrong)
    {
        using var bearer = new HttpClient { BaseAddress = _d.Address };
        bearer.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", "Bearer " + wrong);
        using var cookie = new HttpClient(new HttpClientHandler { UseCookies = false }) { BaseAddress = _d.Address };
        cookie.DefaultRequestHeaders.Add("Cookie", "smartos_token=" + wrong);
        using var query = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = _d.Address };
        using var a = await bearer.GetAsync("api/links");
        using var b = await cookie.GetAsync("api/links");
        using var c = await query.GetAsync("?token=" + Uri.EscapeDataString(wrong));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(a.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
            Assert.That(b.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
            Assert.That(c.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
        }
    }

    [Test]
    public async Task Visiting_with_the_token_sets_a_cookie_that_admits_later_requests()
    {
        var jar = new CookieContainer();
        using var browser = new HttpClient(new HttpClientHandler { CookieContainer = jar }) { BaseAddress = _d.Address };
        using var first = await browser.GetAsync("?token=" + DashboardHost.Token);
        string page = await first.Content.ReadAsStringAsync();
        using var later = await browser.GetAsync("api/zones");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(first.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(first.RequestMessage!.RequestUri!.Query, Is.Empty, "the token leaves the address bar");
            Assert.That(page, Does.Contain("<svg id=\"topology\""));
            Assert.That(jar.GetCookies(_d.Address)["smartos_token"]?.HttpOnly, Is.True);
            Assert.That(later.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        }
    }

    [Test]
    public async Task The_topology_has_every_link_and_both_tenants_with_their_links()
    {
        var t = await Json("api/topology");
        var host = t.GetProperty("hosts")[0];
        var links = host.GetProperty("links").EnumerateArray().ToDictionary(l => l.GetProperty("name").GetString()!, l => l);
        var zones = host.GetProperty("zones").EnumerateArray().ToDictionary(z => z.GetProperty("name").GetString()!, z => z);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(links.Keys, Is.SupersetOf(new[] { "e1000g0", "stub0", "a0", "b0", "spare0" }));
            Assert.That(links["a0"].GetProperty("class").GetString(), Is.EqualTo("vnic"));
            Assert.That(links["a0"].GetProperty("over").GetString(), Is.EqualTo(links["stub0"].GetProperty("id").GetString()));
            Assert.That(links["a0"].GetProperty("zone").GetString(), Is.EqualTo("tenant-a"));
            Assert.That(zones["tenant-a"].GetProperty("state").GetString(), Is.EqualTo("running"));
            Assert.That(zones["tenant-b"].GetProperty("links")[0].GetString(), Is.EqualTo(links["b0"].GetProperty("id").GetString()));
        }
    }

    [Test]
    public async Task Links_zones_and_flows_show_state_memory_limits_and_use()
    {
        Assert.That((await Command("flowadm add-flow -l spare0 -a transport=udp -p maxbw=10M web")).Exit, Is.Zero);
        try
        {
            var a0 = await Json("api/links/a0");
            var zones = await Json("api/zones");
            var flows = await Json("api/flows");
            var tenantA = zones.EnumerateArray().Single(z => z.GetProperty("name").GetString() == "tenant-a");
            var web = flows.EnumerateArray().Single(f => f.GetProperty("name").GetString() == "web");
            using (Assert.EnterMultipleScope())
            {
                Assert.That(a0.GetProperty("class").GetString(), Is.EqualTo("vnic"));
                Assert.That(a0.GetProperty("over").GetString(), Is.EqualTo("stub0"));
                Assert.That(a0.TryGetProperty("oPackets", out _), Is.True);
                Assert.That(tenantA.GetProperty("memoryCapBytes").GetInt64(), Is.EqualTo(256L << 20));
                Assert.That(tenantA.GetProperty("brand").GetString(), Is.EqualTo("joyent"));
                Assert.That(web.GetProperty("link").GetString(), Is.EqualTo("spare0"));
                Assert.That(web.GetProperty("maxBwBps").GetInt64(), Is.EqualTo(10_000_000));
                Assert.That(web.GetProperty("attributes").GetString(), Is.EqualTo("transport=udp"));
                Assert.That(web.TryGetProperty("oBytes", out _), Is.True);
            }
        }
        finally
        {
            await Command("flowadm remove-flow web");
        }
    }

    [Test]
    public async Task The_series_of_a_link_has_one_second_points_and_shows_traffic()
    {
        var run = await Command("pktgen -d a0 -c 200 -s 1000");
        Assert.That(run.Exit, Is.Zero, run.Stderr);
        // The next tick or two put the burst in a point (bounded: a loaded machine ticks late).
        JsonElement s = default;
        List<JsonElement> points = [];
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        while (!points.Exists(p => p.GetProperty("oPps").GetInt64() > 0))
        {
            await Task.Delay(250, bound.Token);
            s = await Json("api/series/a0");
            points = [.. s.GetProperty("points").EnumerateArray()];
        }
        var a0 = await Json("api/links/a0");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(s.GetProperty("interval").GetDouble(), Is.EqualTo(1.0));
            Assert.That(s.GetProperty("capacity").GetInt32(), Is.EqualTo(3600));
            Assert.That(points.Max(p => p.GetProperty("oBps").GetInt64()), Is.GreaterThan(0));
            Assert.That(points.All(p => p.GetProperty("rBps").GetInt64() == 0), Is.True, "a0 only sent");
            Assert.That(a0.GetProperty("oPackets").GetInt64(), Is.GreaterThanOrEqualTo(200));
        }
    }

    [TestCase("api/links/nosuch0")]
    [TestCase("api/series/nosuch0")]
    [TestCase("api/capture?link=nosuch0&seconds=1")]
    public async Task An_unknown_link_is_a_404_with_a_json_error(string path)
    {
        using var r = await _d.Client.GetAsync(path);
        string body = await r.Content.ReadAsStringAsync();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
            Assert.That(r.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/json"));
            Assert.That(JsonDocument.Parse(body).RootElement.GetProperty("error").GetString(), Is.EqualTo("no such link 'nosuch0'"));
        }
    }

    [TestCase("api/capture?link=a0&seconds=0", "bad seconds '0'")]
    [TestCase("api/capture?link=a0&seconds=x", "bad seconds 'x'")]
    [TestCase("api/capture?seconds=1", "a link is required")]
    [TestCase("api/nonsense", "no such API")]
    public async Task Bad_requests_get_a_json_error(string path, string why)
    {
        using var r = await _d.Client.GetAsync(path);
        string body = await r.Content.ReadAsStringAsync();
        Assert.That(JsonDocument.Parse(body).RootElement.GetProperty("error").GetString(), Does.StartWith(why));
        Assert.That((int)r.StatusCode, Is.EqualTo(path.Contains("nonsense") ? 404 : 400));
    }

    [Test]
    public async Task The_console_runs_commands_through_the_dispatcher_with_a_zones_rules()
    {
        var global = await Command("dladm show-link -p -o link");
        var inZone = await Command("zlogin tenant-a dladm show-link -p -o link");
        var refused = await Command("zlogin tenant-a pktgen -d a0 -c 1");
        var unknown = await Command("frobnicate");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(global.Exit, Is.Zero);
            Assert.That(global.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries), Is.SupersetOf(new[] { "a0", "b0", "stub0" }));
            Assert.That(inZone.Stdout, Is.EqualTo("a0\n"), "a zone sees only its own links");
            Assert.That(refused.Exit, Is.EqualTo(1));
            Assert.That(refused.Stderr, Is.EqualTo("pktgen: only the global zone may generate raw frames\n"));
            Assert.That(unknown.Exit, Is.EqualTo(127));
            Assert.That(unknown.Stderr, Is.EqualTo("smartos: frobnicate: command not found\n"));
        }
    }

    [Test]
    public async Task The_console_runs_a_d_script_to_its_exit()
    {
        var d = await Command("dtrace -q -n 'BEGIN { printf(\"%s\\n\", \"hello\"); exit(0); }'");
        Assert.That(d.Exit, Is.Zero, d.Stderr);
        Assert.That(d.Stdout, Does.StartWith("hello\n"));
    }

    [Test]
    public async Task A_console_command_that_outlives_its_limit_is_cancelled_and_says_so()
    {
        await using var d = await DashboardHost.StartAsync(new DashboardOptions
        {
            Endpoint = new IPEndPoint(IPAddress.Loopback, 0), Token = DashboardHost.Token, CommandTimeout = TimeSpan.FromSeconds(1),
        });
        using var r = await d.Client.PostAsJsonAsync("api/command", new { line = "snoop -d b0" });
        var answer = (await r.Content.ReadFromJsonAsync<CommandAnswer>())!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(answer.Stderr, Does.StartWith("Using device b0 (promiscuous mode)\n"));
            Assert.That(answer.Stderr, Does.EndWith("smartos: snoop: cancelled after 1s, the console's limit\n"));
        }
        var after = d.Host.OnLoop(() => d.Host.Host.Mac.Find("b0")!.HasTaps);
        Assert.That(after, Is.False, "the cancelled snoop took its tap off");
    }

    [TestCase("{\"line\": \"dladm show-link 'a0\"}", "unterminated quote")]
    [TestCase("{\"line\": \"   \"}", "empty command")]
    [TestCase("{}", "a JSON body")]
    public async Task A_bad_console_line_is_a_400(string body, string why)
    {
        using var r = await _d.Client.PostAsync("api/command", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        string text = await r.Content.ReadAsStringAsync();
        Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest), text);
        Assert.That(JsonDocument.Parse(text).RootElement.GetProperty("error").GetString(), Does.Contain(why));
    }

    [Test]
    public async Task A_capture_downloads_a_pcap_of_the_links_traffic()
    {
        var capture = _d.Client.GetAsync("api/capture?link=b0&seconds=2");
        await CaptureRunning(_d, "b0");
        var sent = await Command("pktgen -d a0 -c 20 -s 200");
        using var r = await capture;
        byte[] pcap = await r.Content.ReadAsByteArrayAsync();
        Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.OK), System.Text.Encoding.UTF8.GetString(pcap));
        using var reader = CaptureFileReader.Open(new MemoryStream(pcap), "b0.pcap", out string error);
        Assert.That(reader, Is.Not.Null, error);
        int frames = 0;
        while (reader!.TryRead(out var rec))
            if (rec.OriginalLength == 200) frames++;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(sent.Exit, Is.Zero, sent.Stderr);
            Assert.That(r.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/vnd.tcpdump.pcap"));
            Assert.That(r.Content.Headers.ContentDisposition?.FileName, Is.EqualTo("b0.pcap"));
            Assert.That(reader.Format, Is.EqualTo(CaptureFormat.Pcap));
            Assert.That(frames, Is.EqualTo(20), "pktgen's broadcasts reach b0 through the etherstub");
        }
    }

    [Test]
    public async Task A_capture_on_a_link_that_goes_away_is_a_410_and_the_host_keeps_running()
    {
        Assert.That((await Command("dladm create-vnic -l stub0 doomed0")).Exit, Is.Zero);
        var capture = _d.Client.GetAsync("api/capture?link=doomed0&seconds=30");
        await CaptureRunning(_d, "doomed0");
        var deleted = await Command("dladm delete-vnic doomed0");
        using var r = await capture;
        string body = await r.Content.ReadAsStringAsync();
        var after = await Command("dladm show-link -p -o link");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(deleted.Exit, Is.Zero, deleted.Stderr);
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.Gone));
            Assert.That(JsonDocument.Parse(body).RootElement.GetProperty("error").GetString(), Does.StartWith("link 'doomed0' went away during the capture"));
            Assert.That(after.Exit, Is.Zero);
            Assert.That(after.Stdout, Does.Contain("a0\n").And.Not.Contain("doomed0"));
        }
    }

    [Test]
    public async Task The_event_stream_sends_the_topology_then_ticks()
    {
        using var events = new HttpClient { BaseAddress = _d.Address, Timeout = TimeSpan.FromSeconds(20) };
        events.DefaultRequestHeaders.Authorization = _d.Client.DefaultRequestHeaders.Authorization;
        using var r = await events.GetAsync("api/events", HttpCompletionOption.ResponseHeadersRead);
        Assert.That(r.Content.Headers.ContentType?.MediaType, Is.EqualTo("text/event-stream"));
        using var stream = await r.Content.ReadAsStreamAsync();
        using var reader = new StreamReader(stream);
        var names = new List<string>();
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (names.Count(n => n == "tick") < 2 && await reader.ReadLineAsync(bound.Token) is { } line)
            if (line.StartsWith("event: ", StringComparison.Ordinal)) names.Add(line[7..]);
        Assert.That(names[0], Is.EqualTo("topology"));
        Assert.That(names.Count(n => n == "tick"), Is.EqualTo(2));
    }
}
