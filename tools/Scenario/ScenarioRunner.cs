using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using SmartOS.Kernel;
using SmartOS.Vnic;
using SmartOS.Zones;

namespace SmartOS.Cli.Scenario;

/// <summary>
/// `smartos run FILE`: a scenario is the batch form of the commands (ARCHITECTURE.md, "Commands,
/// scenarios, the daemon"). One command per line as typed at a shell, with directives:
/// <code>
///   # comment
///   host NAME [nics=N]                 create (or switch to) a host; later commands run on it
///   wire H1/NIC H2/NIC [speed=1G] [delay=50us] [loss=0.1%] [dup=0.1%] [reorder=0.1%] [mtu=9000]
///   wire H/NIC down|up                 pull the wire at either end out, or plug it back in
///   sleep DURATION                     advance virtual time (10s, 250ms, 50us)
///   timeout DURATION                   bound each foreground command in virtual time (default 600s)
///   ! COMMAND                          a command that must fail (non-zero exit)
///   COMMAND &amp;                          run in the background until the scenario ends
///   expect REGEX                       the previous command's output must match
///   expect-not REGEX                   ... must not match
///   stop                               interrupt the background commands now (as Ctrl-C would)
///   COMMAND &lt;&lt;EOF                      the lines up to "EOF" are the command's standard input
///   COMMAND &lt;&lt;EOF &amp;                    ... and the command runs in the background (keys to a console)
///   echo WORDS                         print the words, as a shell's echo (a note for the reader)
///   disk FILE SIZE                     a blank file-backed disk for zpool (a sparse FILE of SIZE: 64m, 1g),
///                                      made afresh on every run so a run gives the same bytes
///   COMMAND &gt; FILE                     standard output to FILE (created or truncated); &gt;&gt; FILE appends
///   COMMAND &lt; FILE                     standard input from FILE
/// </code>
/// Output is a transcript: each command echoed as "HOST# COMMAND", then what it printed; background
/// commands' output follows at the end. Redirected output goes to its file as bytes, unchanged, so
/// data (nc, zlogin cat) keeps the transcript readable; standard error stays in the transcript.
/// FILE is relative to the working directory (--outdir, else the current directory), as every
/// other path a scenario names (pcap files, -f FILE). A word that begins with $SCENARIO_DIR has it
/// replaced by the directory holding the scenario file, so a scenario can name the files shipped
/// beside it (examples/images/); the transcript shows the word as written, the same on every machine
/// ($NAME of the environment likewise: ScenarioRunner.Variables.cs). Everything runs in virtual time on one world,
/// so the same script gives the same bytes, on any number of threads: the hosts of a world joined by
/// wires with a delay run side by side in windows of that delay (kernel/Timeline.cs), and the script's
/// lines run at the barriers between windows, so a foreground command's end is noticed at the barrier
/// after it, on one thread as on several.
/// </summary>
public sealed partial class ScenarioRunner
{
    private readonly TextWriter _out;
    private readonly TextWriter _err;
    private readonly World _world;
    private readonly string _workDir;
    private Host? _host;
    private string _lastOutput = "";
    private bool _haveLast;
    private long _timeout = 600 * Time.Second;
    private readonly List<string> _failures = [];
    private readonly List<Background> _background = [];
    private readonly CancellationTokenSource _end = new();

    private sealed record Background(int Line, string HostName, string Text, Task<int> Task, OutputCapture Output, CancellationTokenSource Stop, Redirections Files);

    /// <param name="threads">Threads the world's hosts may run on (World.Threads; 1: one thread).</param>
    public ScenarioRunner(TextWriter stdout, TextWriter stderr, string workingDirectory, ulong seed = 1, int threads = 1)
    {
        if (threads < 1) throw new ArgumentOutOfRangeException(nameof(threads), "a scenario runs on at least one thread");
        _out = stdout;
        _err = stderr;
        _workDir = workingDirectory;
        _world = new World(seed) { Threads = threads };
    }

    private const string ScenarioDirWord = "$SCENARIO_DIR";
    private string _scenarioDir = "";

    public World World => _world;
    public IReadOnlyList<string> Failures => _failures;

    /// <summary>Runs a script; returns 0 when every command and expectation held, else 1.</summary>
    public int Run(string script, string fileName)
    {
        _scenarioDir = Path.GetDirectoryName(Path.GetFullPath(fileName)) ?? _workDir;
        string[] lines = script.Replace("\r\n", "\n").Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            int number = i + 1;
            try
            {
                // A here-document: "COMMAND <<TAG", then lines up to one that is TAG alone, as stdin.
                var here = HereDoc().Match(line);
                string? stdin = null;
                if (here.Success)
                {
                    string tag = here.Groups[1].Value;
                    var body = new StringBuilder();
                    int end = i + 1;
                    for (; end < lines.Length && lines[end].Trim() != tag; end++) body.Append(lines[end]).Append('\n');
                    if (end >= lines.Length)
                    {
                        i = end;
                        throw new ScenarioError($"here-document '<<{tag}' has no closing '{tag}' line");
                    }
                    // "COMMAND <<TAG &", as a shell takes it: the here-document, in the background.
                    line = line[..here.Index].TrimEnd() + (here.Groups[2].Success ? " &" : "");
                    i = end;
                    stdin = ExpandHereDocument(body.ToString());
                }
                RunLine(line, number, fileName, stdin);
            }
            catch (ScenarioError e)
            {
                Fail(fileName, number, e.Message);
            }
        }
        Finish();
        if (_failures.Count > 0)
        {
            _err.WriteLine($"smartos run: {fileName}: {_failures.Count} failure(s)");
            return 1;
        }
        return 0;
    }

    private sealed class ScenarioError(string message) : Exception(message);

    private void Fail(string file, int line, string message)
    {
        string text = $"{file}:{line}: {message}";
        _failures.Add(text);
        _err.WriteLine("smartos run: " + text);
    }

    /// <summary>Removes a trailing " # comment" outside quotes.</summary>
    private static string StripComment(string line)
    {
        char quote = '\0';
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            if (quote != '\0') { if (c == quote) quote = '\0'; continue; }
            if (c is '\'' or '"') quote = c;
            else if (c == '\\') i++;
            else if (c == '#' && (i == 0 || char.IsWhiteSpace(line[i - 1]))) return line[..i].TrimEnd();
        }
        return line;
    }

    [GeneratedRegex(@"\s<<\s*([A-Za-z_][A-Za-z0-9_]*)(\s*&)?$")]
    private static partial Regex HereDoc();

    /// <summary>`disk FILE SIZE`: a blank sparse file in the run directory, replacing any left by an
    /// earlier run, so zpool create finds the same disk every time.</summary>
    private void DoDisk(string[] words)
    {
        if (words.Length != 3 || !SizeArgument.TryParse(words[2], out long size) || size <= 0) throw new ScenarioError("usage: disk FILE SIZE (SIZE as 64m, 1g)");
        string path = Path.IsPathRooted(words[1]) ? words[1] : Path.Combine(_workDir, words[1]);
        if (Directory.Exists(path)) throw new ScenarioError($"disk {words[1]}: is a directory");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write);
        fs.SetLength(size);
    }

    private void RunLine(string line, int number, string file, string? stdin = null)
    {
        if (!line.StartsWith("expect", StringComparison.Ordinal)) line = StripComment(line);
        string[] words = Tokenize(line);
        switch (words[0])
        {
            case "host":
                DoHost(words);
                return;
            case "wire":
                DoWire(words);
                return;
            case "sleep":
                if (words.Length != 2 || !Time.TryParseDuration(words[1], out long d)) throw new ScenarioError("usage: sleep DURATION");
                RunFor(d);
                return;
            case "timeout":
                if (words.Length != 2 || !Time.TryParseDuration(words[1], out long t) || t <= 0) throw new ScenarioError("usage: timeout DURATION");
                _timeout = t;
                return;
            case "echo":
                _out.WriteLine(string.Join(' ', words.Skip(1)));
                return;
            case "disk":
                DoDisk(words);
                return;
            case "stop":
                if (words.Length != 1) throw new ScenarioError("usage: stop");
                StopBackground();
                return;
            case "expect":
            case "expect-not":
                DoExpect(words[0] == "expect", line[words[0].Length..].Trim(), number, file);
                return;
        }
        bool mustFail = false;
        if (line.StartsWith("! ", StringComparison.Ordinal))
        {
            mustFail = true;
            line = line[2..].Trim();
        }
        bool background = false;
        if (line.EndsWith('&'))
        {
            background = true;
            line = line[..^1].Trim();
        }
        if (mustFail && background) throw new ScenarioError("a background command cannot be expected to fail");
        if (_host == null) throw new ScenarioError("no host: start the scenario with 'host NAME'");
        string[] argv = Tokenize(line);
        for (int i = 0; i < argv.Length; i++) argv[i] = ExpandWord(argv[i]); // ScenarioRunner.Variables.cs
        _out.WriteLine($"{_host.Name}# {line}{(background ? " &" : "")}");
        var files = Redirections.Open(ref argv, _workDir, stdin != null);
        if ((files.Stdin != null || stdin != null) && CommandRegistry.TryGet(argv[0], out var command) && !command.ReadsStdin)
        {
            // Input a command never reads is refused, not dropped (its descriptor says which read).
            files.Dispose();
            throw new ScenarioError($"{argv[0]} does not read standard input ('<' or '<<')");
        }
        var output = new OutputCapture();
        var stop = CancellationTokenSource.CreateLinkedTokenSource(_end.Token);
        var ctx = new CommandContext
        {
            World = _world, Host = _host, StdoutBytes = files.Stdout ?? (Stream)output, StderrBytes = output, Cancel = stop.Token, WorkingDirectory = _workDir,
            StdinBytes = files.Stdin ?? (stdin == null ? null : new MemoryStream(Encoding.UTF8.GetBytes(stdin))),
            WroteFile = NoteFile,
        };
        if (files.StdoutPath != null) NoteFile(files.StdoutPath);
        var task = Dispatcher.StartAsync(ctx, argv);
        if (background)
        {
            _background.Add(new Background(number, _host.Name, line, task, output, stop, files));
            _haveLast = false;
            return;
        }
        using var closing = files;
        long deadline = _world.Scheduler.Now + _timeout;
        RunUntil(() => task.IsCompleted, deadline);
        string text = output.ToString();
        _out.Write(text);
        _lastOutput = text;
        _haveLast = true;
        if (!task.IsCompleted)
        {
            throw new ScenarioError(_world.Scheduler.Now >= deadline
                ? $"'{line}' did not finish within {Time.FormatSeconds(_timeout, 0)}s of virtual time; run it in the background with &"
                : $"'{line}' is still waiting and nothing else is left to run; run it in the background with &");
        }
        int code = task.Result;
        if (mustFail && code == 0) throw new ScenarioError($"'{line}' succeeded but was expected to fail");
        if (!mustFail && code != 0) throw new ScenarioError($"'{line}' exited {code}");
    }

    private void DoExpect(bool positive, string pattern, int number, string file)
    {
        if (pattern.Length == 0) throw new ScenarioError("usage: expect REGEX");
        if (!_haveLast) throw new ScenarioError("expect needs a foreground command before it");
        Regex re;
        try { re = new Regex(pattern, RegexOptions.Multiline, TimeSpan.FromSeconds(5)); }
        catch (ArgumentException e) { throw new ScenarioError($"bad regular expression: {e.Message}"); }
        bool match = re.IsMatch(_lastOutput);
        if (match != positive)
            throw new ScenarioError(positive ? $"expect /{pattern}/ did not match the output above" : $"expect-not /{pattern}/ matched the output above");
    }

    private void DoHost(string[] words)
    {
        if (words.Length < 2 || words.Length > 3) throw new ScenarioError("usage: host NAME [nics=N]");
        string name = words[1];
        int nics = 2;
        if (words.Length == 3)
        {
            if (!words[2].StartsWith("nics=", StringComparison.Ordinal) || !int.TryParse(words[2][5..], NumberStyles.None, CultureInfo.InvariantCulture, out nics) || nics > 64)
                throw new ScenarioError("usage: host NAME [nics=N] (N from 0 to 64)");
        }
        var existing = _world.FindHost(name);
        if (existing != null)
        {
            if (words.Length == 3 && existing.Mac.Links.OfType<PhysLink>().Count() != nics)
                throw new ScenarioError($"host {name} already exists with a different number of NICs");
            _host = existing;
            return;
        }
        _host = _world.AddHost(name, nics);
        Observe(_host);
    }

    private void DoWire(string[] words)
    {
        if (words.Length == 3 && words[2] is "down" or "up")
        {
            // `wire H/NIC down|up`: either end names the wire (Wire.SetUp).
            var nic = FindNic(words[1]);
            var wire = Wire.Of(nic) ?? throw new ScenarioError($"no wire on {words[1]}");
            wire.SetUp(words[2] == "up");
            return;
        }
        if (words.Length < 3) throw new ScenarioError("usage: wire H1/NIC H2/NIC [speed=1G] [delay=50us] [loss=0.1%] [dup=0.1%] [reorder=0.1%] [mtu=9000]");
        var a = FindNic(words[1]);
        var b = FindNic(words[2]);
        long speed = 1_000_000_000, delay = 0;
        double loss = 0, dup = 0, reorder = 0;
        int mtu = 9000;
        foreach (string opt in words.Skip(3))
        {
            int eq = opt.IndexOf('=');
            string key = eq < 0 ? opt : opt[..eq], value = eq < 0 ? "" : opt[(eq + 1)..];
            switch (key)
            {
                case "speed":
                    if (!TryParseBits(value, out speed) || speed <= 0) throw new ScenarioError($"bad speed '{value}' (e.g. 100M, 1G, 10G)");
                    break;
                case "delay":
                    if (!Time.TryParseDuration(value, out delay)) throw new ScenarioError($"bad delay '{value}' (e.g. 50us, 2ms)");
                    break;
                case "loss":
                    loss = Fraction(key, value);
                    break;
                case "dup":
                    dup = Fraction(key, value);
                    break;
                case "reorder":
                    reorder = Fraction(key, value);
                    break;
                case "mtu":
                    if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out mtu) || mtu < 68 || mtu > 9216)
                        throw new ScenarioError($"bad mtu '{value}'");
                    break;
                default:
                    throw new ScenarioError($"unknown wire option '{key}'");
            }
        }
        try { _world.Connect(a, b, speed, delay, loss, mtu, dup, reorder); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException) { throw new ScenarioError(e.Message); }
    }

    /// <summary>A fraction of frames: "0.1%" or "0.001".</summary>
    private static double Fraction(string key, string value)
    {
        string v = value.EndsWith('%') ? value[..^1] : value;
        if (!double.TryParse(v, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double f) || f > 100)
            throw new ScenarioError($"bad {key} '{value}' (e.g. 0.1%)");
        f = value.EndsWith('%') ? f / 100 : f;
        if (f > 1) throw new ScenarioError($"bad {key} '{value}'");
        return f;
    }

    /// <summary>Parses a bit rate with K/M/G suffixes (decimal, as network speeds are quoted).</summary>
    public static bool TryParseBits(string text, out long bps)
    {
        bps = 0;
        double scale = 1;
        if (text.Length == 0) return false;
        char last = char.ToUpperInvariant(text[^1]);
        if (last is 'K' or 'M' or 'G' or 'T')
        {
            scale = last switch { 'K' => 1e3, 'M' => 1e6, 'G' => 1e9, _ => 1e12 };
            text = text[..^1];
        }
        if (!double.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double v)) return false;
        double r = v * scale;
        if (r < 1 || r > 1e13) return false;
        bps = (long)r;
        return true;
    }

    private PhysLink FindNic(string spec)
    {
        int slash = spec.IndexOf('/');
        if (slash <= 0) throw new ScenarioError($"bad NIC '{spec}': expected HOST/NIC");
        var host = _world.FindHost(spec[..slash]) ?? throw new ScenarioError($"no host '{spec[..slash]}'");
        var link = host.Mac.Find(spec[(slash + 1)..]);
        return link as PhysLink ?? throw new ScenarioError($"no physical NIC '{spec[(slash + 1)..]}' on host {host.Name}");
    }

    /// <summary>Ends the scenario: interrupts background commands (as Ctrl-C would) and prints their output.</summary>
    private void Finish()
    {
        _end.Cancel();
        StopBackground();
        SampleEnd();
        _out.WriteLine($"# end of scenario at {Time.FormatSeconds(_world.Scheduler.Now, 6)}s virtual time");
    }

    private void StopBackground()
    {
        foreach (var b in _background) b.Stop.Cancel();
        foreach (var b in _background)
        {
            RunUntil(() => b.Task.IsCompleted, _world.Scheduler.Now + _timeout);
        }
        foreach (var b in _background)
        {
            b.Files.Dispose();
            _out.WriteLine($"[background, line {b.Line}] {b.HostName}# {b.Text}");
            _out.Write(b.Output.ToString());
            if (!b.Task.IsCompleted) _failures.Add($"line {b.Line}: '{b.Text}' did not stop when interrupted");
            else if (b.Task.Result is not (0 or 130)) _failures.Add($"line {b.Line}: '{b.Text}' exited {b.Task.Result}");
        }
        _background.Clear();
        _haveLast = false;
    }

    /// <summary>
    /// A command line's redirections (`> FILE`, `>> FILE`, `< FILE`, or written together: `>FILE`),
    /// taken out of its words and opened, relative to the scenario's working directory. Streams are
    /// synchronous (SynchronousStream) so virtual-time runs stay deterministic.
    /// </summary>
    private sealed class Redirections : IDisposable
    {
        public Stream? Stdout { get; private set; }
        /// <summary>The full path of the file standard output goes to, if any.</summary>
        public string? StdoutPath { get; private set; }
        public Stream? Stdin { get; private set; }

        public static Redirections Open(ref string[] argv, string dir, bool hereDocument)
        {
            var r = new Redirections();
            var words = new List<string>();
            try
            {
                for (int i = 0; i < argv.Length; i++)
                {
                    string w = argv[i];
                    string op = w.StartsWith(">>", StringComparison.Ordinal) ? ">>" : w.StartsWith('>') ? ">" : w.StartsWith('<') ? "<" : "";
                    if (op.Length == 0 || i == 0)
                    {
                        words.Add(w);
                        continue;
                    }
                    string file = w.Length > op.Length ? w[op.Length..] : i + 1 < argv.Length ? argv[++i] : throw new ScenarioError($"'{op}' needs a file name");
                    string path = Path.IsPathRooted(file) ? file : Path.Combine(dir, file);
                    if (op == "<")
                    {
                        if (r.Stdin != null || hereDocument) throw new ScenarioError("one standard input per command ('<' or '<<')");
                        r.Stdin = new SynchronousStream(OpenFile(path, FileMode.Open, FileAccess.Read));
                    }
                    else
                    {
                        if (r.Stdout != null) throw new ScenarioError("one '>' or '>>' per command");
                        r.Stdout = new SynchronousStream(OpenFile(path, op == ">" ? FileMode.Create : FileMode.Append, FileAccess.Write));
                        r.StdoutPath = Path.GetFullPath(path);
                    }
                }
                if (words.Count == 0) throw new ScenarioError("empty command");
            }
            catch
            {
                r.Dispose();
                throw;
            }
            argv = [.. words];
            return r;
        }

        private static FileStream OpenFile(string path, FileMode mode, FileAccess access)
        {
            try { return new FileStream(path, mode, access, FileShare.Read); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ScenarioError($"cannot open {path}: {e.Message}");
            }
        }

        public void Dispose()
        {
            Stdout?.Dispose();
            Stdin?.Dispose();
            Stdout = null;
            Stdin = null;
        }
    }

    /// <summary>Splits a line as a shell would for simple commands: whitespace, '...' and "..." quoting, \ escapes.</summary>
    public static string[] Tokenize(string line)
    {
        var words = new List<string>();
        var cur = new StringBuilder();
        bool inWord = false;
        char quote = '\0';
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            if (quote != '\0')
            {
                if (c == quote) { quote = '\0'; continue; }
                if (c == '\\' && quote == '"' && i + 1 < line.Length) { cur.Append(line[++i]); continue; }
                cur.Append(c);
                continue;
            }
            if (c is '\'' or '"') { quote = c; inWord = true; continue; }
            if (c == '#' && !inWord) break; // A comment runs to the end of the line, as in sh.
            if (c == '\\' && i + 1 < line.Length) { cur.Append(line[++i]); inWord = true; continue; }
            if (char.IsWhiteSpace(c))
            {
                if (inWord) { words.Add(cur.ToString()); cur.Clear(); inWord = false; }
                continue;
            }
            cur.Append(c);
            inWord = true;
        }
        if (quote != '\0') throw new ScenarioError("unterminated quote");
        if (inWord) words.Add(cur.ToString());
        if (words.Count == 0) throw new ScenarioError("empty command");
        return [.. words];
    }
}
