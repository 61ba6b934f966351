using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using SmartOS.Cli.Observe;
using SmartOS.Cli.Scenario;

namespace SmartOS.Cli.Dashboard;

/// <summary>The pages and the JSON API (DashboardServer.cs has the list and the rules).</summary>
public sealed partial class DashboardServer
{
    /// <summary>The pages: embedded resources, each served with its type; / is index.html.</summary>
    private static void MapPages(WebApplication app)
    {
        app.MapGet("/", () => Asset("index.html"));
        app.MapGet("/assets/{name}", (string name) => Asset(name));
    }

    private static IResult Asset(string name)
    {
        var stream = typeof(DashboardServer).Assembly.GetManifestResourceStream("Dashboard." + name);
        if (stream == null) return Results.Json(new ErrorBody($"no such page '{name}'"), statusCode: 404);
        string type = Path.GetExtension(name) switch
        {
            ".html" => "text/html; charset=utf-8",
            ".js" => "text/javascript; charset=utf-8",
            ".css" => "text/css; charset=utf-8",
            ".svg" => "image/svg+xml",
            _ => "application/octet-stream",
        };
        return Results.Stream(stream, type);
    }

    private void MapApi(WebApplication app)
    {
        var api = app.MapGroup("/api");
        api.MapGet("/topology", () => Answer(() => Topology.Of(_host)));
        api.MapGet("/links", () => Answer(() => Snapshots.Links(_host, _series)));
        api.MapGet("/links/{name}", (string name) => Answer(() => _host.Mac.Find(name) is { } l ? Snapshots.Link(_host, l, _series) : null, NoSuchLink(name)));
        api.MapGet("/series/{name}", (string name) => Answer(() => Snapshots.Series(_series, name), NoSuchLink(name)));
        api.MapGet("/zones", () => Answer(() => Snapshots.Zones(_host)));
        api.MapGet("/flows", () => Answer(() => Snapshots.Flows(_host)));
        api.MapGet("/capture", CaptureAsync);
        api.MapPost("/command", CommandAsync);
        api.MapGet("/events", EventsAsync);
        api.MapFallback(() => Results.Json(new ErrorBody("no such API; see /api/topology, /api/links, /api/series/LINK, /api/zones, /api/flows, /api/capture, /api/command, /api/events"), statusCode: 404));
    }

    private static string NoSuchLink(string name) => $"no such link '{name}'";

    /// <summary>A snapshot taken on the loop, as JSON; null from <paramref name="take"/> is a 404 with
    /// <paramref name="missing"/>.</summary>
    private async Task<IResult> Answer<T>(Func<T?> take, string missing = "") where T : class
    {
        T? value;
        try { value = await OnLoop(take).ConfigureAwait(false); }
        catch (LoopUnavailableException) { return LoopBusy(); }
        return value == null ? Results.Json(new ErrorBody(missing), statusCode: 404) : Results.Json(value);
    }

    private IResult LoopBusy()
        => Results.Json(new ErrorBody($"the host did not answer within {_options.LoopTimeout.TotalSeconds:0.#}s"), statusCode: 503);

    private static IResult BadRequest(string why) => Results.Json(new ErrorBody(why), statusCode: 400);

    /// <summary>Rule 5: the console. The line is split as a shell would (ScenarioRunner.Tokenize)
    /// and run through the dispatcher on the loop; `zlogin ZONE CMD` runs it in a zone with that
    /// zone's rules. The answer comes when the command ends, is cancelled at CommandTimeout, or
    /// the client goes away.</summary>
    private async Task<IResult> CommandAsync(CommandRequest? request, HttpContext http)
    {
        if (request?.Line is not { } line || line.Length > 4096) return BadRequest("a JSON body {\"line\": \"COMMAND ...\"} of at most 4096 characters is required");
        string[] argv;
        try { argv = ScenarioRunner.Tokenize(line); }
        // Tokenize's only failures are a bad line's (an unterminated quote, no words), thrown as the
        // scenario runner's private error type.
        catch (Exception e) { return BadRequest(e.Message); }
        using var cancel = new CancellationTokenSource();
        var stdout = new OutputCapture(_options.MaxOutputBytes, Cancel);
        var stderr = new OutputCapture(_options.MaxOutputBytes, Cancel);
        var ctx = new CommandContext
        {
            World = _world, Host = _host, StdoutBytes = stdout, StderrBytes = stderr, Cancel = cancel.Token,
            WorkingDirectory = Environment.CurrentDirectory,
        };
        Task<int> started;
        try { started = await OnLoop(() => Dispatcher.StartAsync(ctx, argv)).ConfigureAwait(false); }
        catch (LoopUnavailableException) { return LoopBusy(); }
        int code;
        bool timedOut = false;
        try { code = await started.WaitAsync(_options.CommandTimeout, http.RequestAborted).ConfigureAwait(false); }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            timedOut = e is TimeoutException;
            Cancel();
            try { code = await started.WaitAsync(_options.LoopTimeout).ConfigureAwait(false); }
            catch (TimeoutException) { code = 130; }
        }
        catch (Exception e)
        {
            stderr.Write(Encoding.UTF8.GetBytes($"smartos: {argv[0]}: internal error: {e.Message}\n"));
            code = 1;
        }
        string err = stderr.ToString();
        if (timedOut) err += $"smartos: {argv[0]}: cancelled after {_options.CommandTimeout.TotalSeconds:0.#}s, the console's limit\n";
        if (stdout.Overflowed || stderr.Overflowed) err += $"smartos: {argv[0]}: output beyond {_options.MaxOutputBytes} bytes dropped and the command cancelled\n";
        return Results.Json(new CommandAnswer(code, stdout.ToString(), err));

        void Cancel() => _driver.Invoke(() => { try { cancel.Cancel(); } catch (ObjectDisposedException) { } });
    }

    /// <summary>Server-sent events: one stream per client, fed by the hub (rule 4).</summary>
    private async Task EventsAsync(HttpContext http)
    {
        http.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        await _events.ServeAsync(http.Response.Body, t => http.Response.Body.FlushAsync(t), http.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>Rule 6: ?link=NAME&amp;seconds=N captures N seconds of the link and answers the pcap as
    /// a download named LINK.pcap.</summary>
    private async Task<IResult> CaptureAsync(HttpContext http, string? link, string? seconds)
    {
        if (string.IsNullOrEmpty(link)) return BadRequest("a link is required: /api/capture?link=NAME&seconds=N");
        int n = 5;
        if (seconds != null && (!int.TryParse(seconds, NumberStyles.None, CultureInfo.InvariantCulture, out n) || n < 1 || n > _options.MaxCaptureSeconds))
            return BadRequest($"bad seconds '{seconds}' (1 to {_options.MaxCaptureSeconds})");
        LinkCapture? capture;
        try { capture = await OnLoop(() => LinkCapture.Start(_host, link, n, _options.MaxCaptureBytes, _captures)).ConfigureAwait(false); }
        catch (LoopUnavailableException) { return LoopBusy(); }
        if (capture == null) return Results.Json(new ErrorBody(NoSuchLink(link)), statusCode: 404);
        CaptureResult result;
        try { result = await capture.Done.Task.WaitAsync(http.RequestAborted).ConfigureAwait(false); }
        catch (OperationCanceledException)
        {
            _driver.Invoke(() => capture.End(CaptureEnd.Abandoned));
            return Results.Empty;
        }
        return result.End switch
        {
            CaptureEnd.LinkGone => Results.Json(new ErrorBody($"link '{link}' went away during the capture ({result.Packets} packets captured before it did)"), statusCode: 410),
            CaptureEnd.WriteFailed => Results.Json(new ErrorBody("the capture could not be written: " + result.Error), statusCode: 500),
            _ => Results.File(result.Pcap, "application/vnd.tcpdump.pcap", link + ".pcap"),
        };
    }
}

/// <summary>The console's request: one command line.</summary>
public sealed record CommandRequest(string? Line);

/// <summary>The console's answer: the exit status and both outputs.</summary>
public sealed record CommandAnswer(int Exit, string Stdout, string Stderr);
