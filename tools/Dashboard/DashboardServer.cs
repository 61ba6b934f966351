/*
 * The live dashboard of a running host: `smartos boot --http [ADDR:]PORT`.
 *
 * An ASP.NET Core (Kestrel) server, from the SDK's shared framework, in the same process as the
 * daemon. It serves a few plain HTML/JS/SVG pages from embedded resources (nothing from a CDN,
 * nothing downloaded), a JSON API under /api, and server-sent events for live updates.
 *
 * Glossary
 *   token      a secret that `smartos boot` draws from the system's random source, writes to
 *              ROOT/http.token (mode 0600) and prints. Every request carries it, as a bearer
 *              header or as the cookie that visiting /?token=TOKEN sets. Without it: 401.
 *   loop       the host's kernel loop thread (RealTimeDriver). Only it touches host state.
 *   tick       once a second of the host's clock, a timer on the loop samples every link's
 *              counters into the history (tools/Observe/LinkSeries.cs, an hour of 1 s samples)
 *              and takes a snapshot for the clients (Snapshots.cs, tools/Observe/Topology.cs).
 *   client     one open /api/events stream, with its own bounded queue of messages (EventHub.cs).
 *
 * API (all JSON unless said; errors are {"error": "..."} with 400, 401, 404, 409, 410 or 503)
 *   GET  /api/topology          the host's graph (tools/Observe/Topology.cs): links of every class,
 *                               wires, zones and VMs, flows
 *   GET  /api/links[/NAME]      links with their counters and last second's rates
 *   GET  /api/series/NAME       a link's history: 1 s points, up to an hour
 *   GET  /api/zones             zones and VMs with state and memory
 *   GET  /api/flows             flows with their limits and use
 *   GET  /api/capture?link=NAME&seconds=N   a pcap of N seconds of the link (a download)
 *   POST /api/command           {"line": "dladm show-link"} -> {"exit", "stdout", "stderr"}
 *   GET  /api/events            text/event-stream: "tick" every second (links, zones, flows),
 *                               "topology" first and whenever the graph changes
 *
 * Rules
 *   1. Off unless asked for, and on loopback unless an address is given.
 *   2. Every request, pages included, needs the token; the comparison takes the same time whatever
 *      the guess (CryptographicOperations.FixedTimeEquals).
 *   3. Handlers never touch host state: they post a function to the loop (RealTimeDriver.InvokeAsync,
 *      as the daemon's commands are started) and await its answer, bounded in time (503 when the
 *      loop does not answer). What they post reads and copies; it never waits.
 *   4. The loop never waits on a client: each tick's snapshot goes to a broadcaster thread that
 *      serialises it once and offers it to every client's bounded queue; a client whose queue is
 *      full loses the message, and the loss is counted (EventHub.Dropped).
 *   5. The console runs a command line through the same dispatcher as the daemon, with the same
 *      rules (a non-global zone's refusals through zlogin, commands that need a running host); its
 *      output is bounded (MaxOutputBytes) and its run is bounded in time (CommandTimeout), after
 *      which it is cancelled as Ctrl-C would.
 *   6. A capture is bounded (MaxCaptureSeconds, MaxCaptureBytes). A link that goes away during the
 *      capture ends it with 410 and a message; the host keeps running.
 *
 * Not done yet: the console answers when the command ends, so a long-running one (snoop, a D script
 * without exit()) shows its output only at the CommandTimeout's cancel; streaming it over the event
 * stream would lift that. WebSockets (SSE serves the one-way updates). Several hosts in one page:
 * smartos boot runs one host, so the page draws one (Observe's Topology can hold several).
 */
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SmartOS.Cli.Observe;
using SmartOS.Kernel;
using SmartOS.Zones;

namespace SmartOS.Cli.Dashboard;

/// <summary>The dashboard's bounds (rules 4 to 6). The defaults serve a browser; tests shrink them.</summary>
public sealed class DashboardOptions
{
    /// <summary>Where to listen: loopback unless the operator names an address (rule 1).</summary>
    public required IPEndPoint Endpoint { get; init; }
    /// <summary>The secret every request carries (rule 2).</summary>
    public required string Token { get; init; }
    /// <summary>Messages waiting for one event-stream client beyond which new ones are dropped.</summary>
    public int EventQueue { get; init; } = 32;
    /// <summary>How long a console command may run before it is cancelled.</summary>
    public TimeSpan CommandTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Console output kept per stream; beyond it the command is cancelled.</summary>
    public int MaxOutputBytes { get; init; } = 1 << 20;
    /// <summary>The longest capture a request may ask for.</summary>
    public int MaxCaptureSeconds { get; init; } = 300;
    /// <summary>Capture bytes beyond which the capture ends early (the file so far is served).</summary>
    public int MaxCaptureBytes { get; init; } = 64 << 20;
    /// <summary>How long a handler waits for the loop before it answers 503.</summary>
    public TimeSpan LoopTimeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>The dashboard server (see the theory statement above).</summary>
public sealed partial class DashboardServer : IAsyncDisposable
{
    public const string TokenFileName = "http.token";
    private const string CookieName = "smartos_token";

    private readonly World _world;
    private readonly Host _host;
    private readonly RealTimeDriver _driver;
    private readonly DashboardOptions _options;
    private readonly byte[] _token;
    private LinkSeries _series = null!; // Made on the loop (StartAsync), which alone samples it.
    private readonly EventHub _events;
    /// <summary>Captures running now; on the loop only.</summary>
    private readonly List<LinkCapture> _captures = [];
    private WebApplication? _app;
    private KTimer? _tick;
    private volatile bool _stopping;

    public DashboardServer(World world, Host host, DashboardOptions options)
    {
        if (world.Driver == null) throw new InvalidOperationException("the dashboard serves a world that runs in real time");
        if (options.Token.Length < 16) throw new ArgumentException("a token of at least 16 characters is required", nameof(options));
        _world = world;
        _host = host;
        _driver = world.Driver;
        _options = options;
        _token = Encoding.UTF8.GetBytes(options.Token);
        _events = new EventHub(options.EventQueue);
    }

    /// <summary>The address the server listens on, with the port it got (after Start).</summary>
    public Uri? Address { get; private set; }

    /// <summary>Event-stream messages dropped because a client's queue was full (rule 4).</summary>
    public long EventsDropped => _events.Dropped;

    /// <summary>Event-stream clients connected now.</summary>
    public int EventClients => _events.Clients;

    /// <summary>A fresh token from the system's random source: the front end draws it (library code
    /// never makes its own randomness), writes it and prints it.</summary>
    public static string NewToken() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    /// <summary>Writes the token to ROOT/http.token, readable by its owner only, made with that mode
    /// before a byte is written so no other user can open it in between.</summary>
    public static string WriteTokenFile(string root, string token)
    {
        string path = Path.Combine(root, TokenFileName);
        File.Delete(path);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var f = new FileStream(path, options)) f.Write(Encoding.UTF8.GetBytes(token + "\n"));
        return path;
    }

    /// <summary>Parses `[ADDR:]PORT` (an IPv6 address in brackets); without an address, loopback (rule 1).</summary>
    public static bool TryParseEndpoint(string text, out IPEndPoint endpoint, out string error)
    {
        endpoint = new IPEndPoint(IPAddress.Loopback, 0);
        error = "";
        string addressText = "", portText = text;
        int colon = text.LastIndexOf(':');
        if (colon >= 0)
        {
            addressText = text[..colon];
            portText = text[(colon + 1)..];
        }
        if (!ushort.TryParse(portText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out ushort port))
        {
            error = $"bad port '{portText}' (0 to 65535)";
            return false;
        }
        var address = IPAddress.Loopback;
        if (colon >= 0)
        {
            string bare = addressText.StartsWith('[') && addressText.EndsWith(']') ? addressText[1..^1] : addressText;
            if (addressText.Length == 0 || !IPAddress.TryParse(bare, out address!) || (bare.Contains(':') && bare == addressText))
            {
                error = $"bad address '{addressText}' (an IPv4 address, or an IPv6 address in brackets)";
                return false;
            }
        }
        endpoint = new IPEndPoint(address, port);
        return true;
    }

    /// <summary>Starts listening and ticking. Throws IOException when the address cannot be bound.</summary>
    public async Task StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "smartos-dashboard" });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(_options.Endpoint);
            k.AddServerHeader = false;
        });
        builder.Services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.CamelCase;
        });
        var app = builder.Build();
        app.Use(Authenticate);
        MapPages(app);
        MapApi(app);
        // The history and the tick exist before the first request can ask for them.
        await OnLoop(() =>
        {
            _series = new LinkSeries(_host);
            _tick = new KTimer(_host.Scheduler, _ => Tick());
            Tick();
            return 0;
        }).ConfigureAwait(false);
        _events.Start();
        try { await app.StartAsync().ConfigureAwait(false); }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
        {
            await app.DisposeAsync().ConfigureAwait(false);
            await DisposeAsync().ConfigureAwait(false);
            throw new IOException($"cannot listen on {_options.Endpoint}: {e.Message}", e);
        }
        _app = app;
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
        Address = new Uri(addresses.First());
    }

    /// <summary>Rule 2: the bearer header or the cookie; /?token=... sets the cookie and sends the
    /// browser to the same page without the token in its address bar.</summary>
    private async Task Authenticate(HttpContext http, Func<Task> next)
    {
        if (http.Request.Query.TryGetValue("token", out var given) && Matches(given.ToString()))
        {
            http.Response.Cookies.Append(CookieName, given.ToString(), new CookieOptions
            {
                HttpOnly = true, SameSite = SameSiteMode.Strict, Path = "/", IsEssential = true,
            });
            http.Response.Redirect(http.Request.Path.HasValue ? http.Request.Path.Value! : "/");
            return;
        }
        string? presented = null;
        string auth = http.Request.Headers.Authorization.ToString();
        if (auth.StartsWith("Bearer ", StringComparison.Ordinal)) presented = auth[7..].Trim();
        else if (http.Request.Cookies.TryGetValue(CookieName, out var cookie)) presented = cookie;
        if (presented == null || !Matches(presented))
        {
            http.Response.StatusCode = StatusCodes.Status401Unauthorized;
            http.Response.Headers.WWWAuthenticate = "Bearer realm=\"smartos\"";
            await http.Response.WriteAsJsonAsync(new ErrorBody(presented == null
                ? "a token is required: open the address `smartos boot` printed, or send 'Authorization: Bearer' with the contents of http.token"
                : "the token is not this host's")).ConfigureAwait(false);
            return;
        }
        await next().ConfigureAwait(false);
    }

    private bool Matches(string presented)
    {
        var bytes = Encoding.UTF8.GetBytes(presented);
        return bytes.Length == _token.Length && CryptographicOperations.FixedTimeEquals(bytes, _token);
    }

    /// <summary>Rule 3: runs <paramref name="func"/> on the loop and awaits it, bounded in time.</summary>
    private async Task<T> OnLoop<T>(Func<T> func)
    {
        try { return await _driver.InvokeAsync(func).WaitAsync(_options.LoopTimeout).ConfigureAwait(false); }
        catch (TimeoutException) { throw new LoopUnavailableException(); }
    }

    /// <summary>The loop did not answer in time (a 503, never a hung request).</summary>
    private sealed class LoopUnavailableException : Exception;

    /// <summary>One second of the host's clock: sample every link, hand a snapshot to the broadcaster
    /// (rule 4), and arm the next tick. Runs on the loop.</summary>
    private void Tick()
    {
        if (_stopping) return;
        long now = _host.Scheduler.Now;
        _series.Sample(now);
        for (int i = _captures.Count - 1; i >= 0; i--) _captures[i].CheckLink();
        _events.Offer(Snapshots.Tick(_host, _series, now), Topology.Of(_host));
        _tick!.ArmAt(_series.NextSampleTime);
    }

    public async ValueTask DisposeAsync()
    {
        _stopping = true;
        try
        {
            await OnLoop(() =>
            {
                for (int i = _captures.Count - 1; i >= 0; i--) _captures[i].End(CaptureEnd.Abandoned);
                return _tick?.Cancel() ?? false;
            }).ConfigureAwait(false);
        }
        catch (Exception e) when (e is LoopUnavailableException or ObjectDisposedException or InvalidOperationException) { }
        _events.Dispose();
        if (_app != null)
        {
            using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await _app.StopAsync(bound.Token).ConfigureAwait(false);
            await _app.DisposeAsync().ConfigureAwait(false);
        }
    }
}

/// <summary>Every error the API returns: {"error": "..."}.</summary>
public sealed record ErrorBody(string Error);
