using Microsoft.Playwright;
using SmartOS.Cli.Snoop;

namespace SmartOS.Dashboard.Tests;

/// <summary>
/// The dashboard in a real browser: Debian's headless chromium driven by Playwright, never a browser
/// Playwright downloads (ExecutablePath; without /usr/bin/chromium these tests are ignored with the
/// reason). One host with two tenants and one browser serve every test; each test opens its own
/// page and saves a screenshot under out/dashboard/ for CI's artifacts.
/// </summary>
[NonParallelizable]
public class BrowserTests
{
    private const string Chromium = "/usr/bin/chromium";
    private static readonly float s_wait = 15_000;

    private DashboardHost _d = null!;
    private IPlaywright _playwright = null!;
    private IBrowser _browser = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        if (!File.Exists(Chromium)) Assert.Ignore($"{Chromium} is missing: install Debian's chromium package (.ci/run does)");
        _d = await DashboardHost.StartAsync();
        _playwright = await Playwright.CreateAsync();
        // --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
        _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium, Headless = true, Args = ["--no-sandbox"], Timeout = 30_000,
        });
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        if (_browser != null) await _browser.DisposeAsync();
        _playwright?.Dispose();
        if (_d != null) await _d.DisposeAsync();
    }

    /// <summary>A fresh page that has visited /?token=... (so it holds the cookie) and drawn its data.</summary>
    private async Task<(IBrowserContext Context, IPage Page)> OpenAsync()
    {
        var context = await _browser.NewContextAsync(new BrowserNewContextOptions { AcceptDownloads = true, ViewportSize = new() { Width = 1400, Height = 1000 } });
        var page = await context.NewPageAsync();
        page.SetDefaultTimeout(s_wait);
        await page.GotoAsync(new Uri(_d.Address, "?token=" + DashboardHost.Token).ToString());
        await Assertions.Expect(page.Locator("#status")).ToHaveTextAsync("live");
        return (context, page);
    }

    private static Task Screenshot(IPage page, string name)
        => page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(DashboardHost.OutDirectory(), name + ".png"), FullPage = true });

    [Test]
    public async Task The_topology_shows_each_link_and_zone_of_the_two_tenants()
    {
        var (context, page) = await OpenAsync();
        await using var _ = context;
        foreach (string name in new[] { "global", "e1000g0", "stub0", "a0", "b0", "spare0", "tenant-a", "tenant-b" })
            await Assertions.Expect(page.Locator($"#topology g.node[data-name='{name}']")).ToHaveCountAsync(1);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(await page.Locator("#topology g.node[data-name='tenant-a']").GetAttributeAsync("class"), Does.Contain("kind-zone"));
            Assert.That(await page.Locator("#topology g.node[data-name='a0']").GetAttributeAsync("class"), Does.Contain("kind-vnic"));
            // a0 hangs from stub0, and tenant-a from a0.
            Assert.That(await page.Locator("#topology line.edge[data-from$='/link/" + await LinkIdOf("stub0") + "'][data-to$='/link/" + await LinkIdOf("a0") + "']").CountAsync(), Is.EqualTo(1));
            Assert.That(await page.Locator("#topology line.edge[data-to='global/zone/tenant-a']").CountAsync(), Is.EqualTo(1));
            Assert.That(await page.Locator("#zones tr[data-zone='tenant-b'] td.state").TextContentAsync(), Is.EqualTo("running"));
            Assert.That(await page.Locator("#zones tr[data-zone='tenant-b'] td.cap").TextContentAsync(), Is.EqualTo("256.0M"));
        }
        await Screenshot(page, "topology");
    }

    private async Task<string> LinkIdOf(string name)
    {
        var link = await _d.Client.GetStringAsync("api/links/" + name);
        return System.Text.Json.JsonDocument.Parse(link).RootElement.GetProperty("id").GetString()!.Split('/')[^1];
    }

    [Test]
    public async Task The_topology_redraws_when_a_link_comes_and_goes()
    {
        var (context, page) = await OpenAsync();
        await using var _ = context;
        _d.Host.Ok("dladm", "create-vnic", "-l", "stub0", "extra0");
        try
        {
            await Assertions.Expect(page.Locator("#topology g.node[data-name='extra0']")).ToHaveCountAsync(1);
        }
        finally
        {
            _d.Host.Ok("dladm", "delete-vnic", "extra0");
        }
        await Assertions.Expect(page.Locator("#topology g.node[data-name='extra0']")).ToHaveCountAsync(0);
    }

    [Test]
    public async Task A_links_counter_moves_while_pktgen_runs()
    {
        var (context, page) = await OpenAsync();
        await using var _ = context;
        var cell = page.Locator("#links tr[data-link='a0'] td.opackets");
        long before = long.Parse((await cell.TextContentAsync())!, System.Globalization.CultureInfo.InvariantCulture);
        var (pktgen, cts, _, err) = _d.Host.Begin("pktgen", "-d", "a0", "-c", "100000", "-s", "500", "-r", "500");
        try
        {
            await Assertions.Expect(cell).Not.ToHaveTextAsync(before.ToString(System.Globalization.CultureInfo.InvariantCulture));
            long during = long.Parse((await cell.TextContentAsync())!, System.Globalization.CultureInfo.InvariantCulture);
            // The next tick moves it again: it is live, not a single refresh.
            await Assertions.Expect(cell).Not.ToHaveTextAsync(during.ToString(System.Globalization.CultureInfo.InvariantCulture));
            await Assertions.Expect(page.Locator("#links tr[data-link='a0'] td.obps")).Not.ToHaveTextAsync("0");
            await page.Locator("#links tr[data-link='a0']").ClickAsync();
            await Assertions.Expect(page.Locator("#chart polyline.tx")).ToHaveCountAsync(1);
            await Screenshot(page, "links-under-load");
            Assert.That(during, Is.GreaterThan(before), err.ToString());
        }
        finally
        {
            _d.Host.Driver.Invoke(cts.Cancel);
            pktgen.Wait(TimeSpan.FromSeconds(10));
        }
    }

    [Test]
    public async Task The_capture_button_downloads_a_pcap_that_reads_back()
    {
        var (context, page) = await OpenAsync();
        await using var _ = context;
        await page.Locator("#capture-link").SelectOptionAsync("b0");
        await page.Locator("#capture-seconds").FillAsync("3");
        var download = page.WaitForDownloadAsync(new PageWaitForDownloadOptions { Timeout = s_wait });
        await page.Locator("#capture-button").ClickAsync();
        await ApiTests.CaptureRunning(_d, "b0");
        _d.Host.Ok("pktgen", "-d", "a0", "-c", "10", "-s", "300");
        var file = await download;
        string path = Path.Combine(DashboardHost.OutDirectory(), "capture-b0.pcap");
        await file.SaveAsAsync(path);
        await Assertions.Expect(page.Locator("#capture-status")).ToContainTextAsync("b0.pcap");
        await Screenshot(page, "capture");
        using var reader = CaptureFileReader.Open(path, out string error);
        Assert.That(reader, Is.Not.Null, error);
        int frames = 0;
        while (reader!.TryRead(out var rec))
            if (rec.OriginalLength == 300) frames++;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(file.SuggestedFilename, Is.EqualTo("b0.pcap"));
            Assert.That(frames, Is.EqualTo(10));
        }
    }

    [Test]
    public async Task The_console_runs_a_command_and_shows_a_zones_refusal()
    {
        var (context, page) = await OpenAsync();
        await using var _ = context;
        await page.Locator("#console-input").FillAsync("zlogin tenant-b dladm show-link -p -o link,over");
        await page.Locator("#console-run").ClickAsync();
        await Assertions.Expect(page.Locator("#console-output .out")).ToHaveTextAsync("b0:stub0\n");
        await page.Locator("#console-input").FillAsync("zlogin tenant-b vmadm list");
        await page.Locator("#console-run").ClickAsync();
        await Assertions.Expect(page.Locator("#console-output .exit").Last).ToHaveAttributeAsync("data-exit", "1");
        await Assertions.Expect(page.Locator("#console-output .err").Last).ToHaveTextAsync("vmadm: must be run from the global zone\n");
        await Screenshot(page, "console");
    }

    [Test]
    public async Task A_browser_without_the_token_gets_401()
    {
        var context = await _browser.NewContextAsync();
        await using var _ = context;
        var page = await context.NewPageAsync();
        var response = await page.GotoAsync(_d.Address.ToString());
        using (Assert.EnterMultipleScope())
        {
            Assert.That(response!.Status, Is.EqualTo(401));
            Assert.That(await page.ContentAsync(), Does.Contain("a token is required"));
        }
        await Screenshot(page, "no-token");
    }
}
