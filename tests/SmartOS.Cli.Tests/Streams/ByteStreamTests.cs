using System.Security.Cryptography;
using System.Text;
using SmartOS.Cli.Scenario;
using SmartOS.Cli.Tests.Commands;
using SmartOS.Kernel;

namespace SmartOS.Cli.Tests.Streams;

/// <summary>Standard input and output are bytes (Dispatcher.cs rule 5): every byte value passes
/// through nc and the dispatcher unchanged, in both directions, and `smartos run` redirects them to
/// and from files.</summary>
public class ByteStreamTests
{
    private string _dir = "";

    [SetUp]
    public void MakeDir() => _dir = Directory.CreateTempSubdirectory("smartos-bytes-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(_dir, recursive: true);

    /// <summary>Bytes of every value 0-255, in a seeded random order.</summary>
    internal static byte[] RandomBytes(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        for (int i = 0; i < 256 && i < length; i++) data[i] = (byte)i;
        return data;
    }

    internal static string Sha(byte[] data) => Convert.ToHexString(SHA256.HashData(data));

    private static string CreateVm(CliHost h, string alias, string ip)
    {
        var r = h.WithStdin($$"""{ "alias": "{{alias}}", "autoboot": true, "nics": [ { "nic_tag": "stub0", "ips": ["{{ip}}/24"] } ] }""", "vmadm", "create");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        return alias;
    }

    private static CliHost TwoZones()
    {
        var h = new CliHost();
        h.Ok(CliHost.Split("nictagadm add -l stub0"));
        CreateVm(h, "server", "10.7.0.3");
        CreateVm(h, "client", "10.7.0.2");
        h.World.Scheduler.RunFor(2 * Time.Second);
        return h;
    }

    private static (Task<int> Task, OutputCapture Out, OutputCapture Err) Start(CliHost h, byte[]? stdin, params string[] argv)
    {
        var o = new OutputCapture();
        var e = new OutputCapture();
        var ctx = new CommandContext
        {
            World = h.World, Host = h.Host, StdoutBytes = o, StderrBytes = e, StdinBytes = stdin == null ? null : new MemoryStream(stdin),
        };
        return (Dispatcher.StartAsync(ctx, argv), o, e);
    }

    [Test]
    public void Nc_sends_its_standard_input_byte_for_byte_and_prints_what_it_receives_as_bytes()
    {
        var h = TwoZones();
        var sent = RandomBytes(300_000, 1);
        var server = Start(h, null, "zlogin", "server", "nc", "-l", "9000");
        var client = Start(h, sent, "zlogin", "client", "nc", "10.7.0.3", "9000");
        h.World.Scheduler.RunUntil(() => server.Task.IsCompleted && client.Task.IsCompleted, h.World.Scheduler.Now + 60 * Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(client.Task.IsCompleted && server.Task.IsCompleted, Is.True, "nc did not finish");
            Assert.That(server.Task.Result, Is.Zero, server.Err.ToString());
            Assert.That(client.Task.Result, Is.Zero, client.Err.ToString());
            Assert.That(server.Out.Length, Is.EqualTo(sent.Length));
            Assert.That(Sha(server.Out.ToArray()), Is.EqualTo(Sha(sent)));
        }
    }

    [Test]
    public void A_listening_nc_sends_its_standard_input_back_to_the_client_unchanged()
    {
        var h = TwoZones();
        var sent = RandomBytes(200_000, 2);
        var server = Start(h, sent, "zlogin", "server", "nc", "-l", "9000");
        h.World.Scheduler.RunFor(Time.Millisecond);
        var got = h.Run("zlogin", "client", "nc", "10.7.0.3", "9000");
        h.World.Scheduler.RunUntil(() => server.Task.IsCompleted, h.World.Scheduler.Now + 10 * Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(got.ExitCode, Is.Zero, got.Stderr);
            Assert.That(Sha(got.StdoutBytes), Is.EqualTo(Sha(sent)));
            Assert.That(got.StdoutBytes, Has.Length.EqualTo(sent.Length));
        }
    }

    /// <summary>nc -v's text on stderr and its data on stdout, both into one stream (2>&amp;1), come
    /// out in the order written.</summary>
    [Test]
    public void Text_and_bytes_written_by_one_command_keep_their_order()
    {
        var h = TwoZones();
        var sent = RandomBytes(1000, 3);
        var both = new OutputCapture();
        var ctx = new CommandContext { World = h.World, Host = h.Host, StdoutBytes = both, StderrBytes = both };
        var server = Dispatcher.StartAsync(ctx, ["zlogin", "server", "nc", "-v", "-l", "9000"]);
        var client = Start(h, sent, "zlogin", "client", "nc", "10.7.0.3", "9000");
        h.World.Scheduler.RunUntil(() => server.IsCompleted && client.Task.IsCompleted, h.World.Scheduler.Now + 10 * Time.Second);
        var all = both.ToArray();
        int newline = Array.IndexOf(all, (byte)'\n');
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Encoding.UTF8.GetString(all, 0, newline + 1), Does.Match(@"^Connection received on 10\.7\.0\.2 \d+\n$"));
            Assert.That(Sha(all[(newline + 1)..]), Is.EqualTo(Sha(sent)));
        }
    }

    /// <summary>`> FILE` takes a command's output to a file as bytes, `< FILE` feeds one as input,
    /// `>> FILE` appends; the transcript shows the commands and their standard error only.</summary>
    [Test]
    public void A_scenario_redirects_standard_output_to_files_and_standard_input_from_them()
    {
        var sent = RandomBytes(100_000, 4);
        File.WriteAllBytes(Path.Combine(_dir, "sent.bin"), sent);
        string script = """
            host h1
            nictagadm add -l stub0
            vmadm create <<EOF
            { "alias": "server", "autoboot": true, "nics": [ { "nic_tag": "stub0", "ips": ["10.7.0.3/24"] } ] }
            EOF
            vmadm create <<EOF
            { "alias": "client", "autoboot": true, "nics": [ { "nic_tag": "stub0", "ips": ["10.7.0.2/24"] } ] }
            EOF
            sleep 2s
            zlogin server nc -l 9000 > got.bin &
            sleep 1ms
            zlogin client nc 10.7.0.3 9000 < sent.bin
            sleep 1s
            zonename > names.txt
            zonename >>names.txt
            zlogin client zonename >> names.txt
            """;
        var o = new StringWriter { NewLine = "\n" };
        var e = new StringWriter { NewLine = "\n" };
        int code = new ScenarioRunner(o, e, _dir).Run(script, "redirect.scn");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.Zero, e.ToString() + o);
            Assert.That(Sha(File.ReadAllBytes(Path.Combine(_dir, "got.bin"))), Is.EqualTo(Sha(sent)));
            Assert.That(File.ReadAllText(Path.Combine(_dir, "names.txt")), Does.Match("^global\nglobal\n[0-9a-f-]{36}\n$"), "the UUID of client");
            Assert.That(o.ToString(), Does.Contain("h1# zlogin client nc 10.7.0.3 9000 < sent.bin\n"));
            Assert.That(o.ToString(), Does.Not.Contain("\uFFFD"), "no binary in the transcript");
        }
    }

    [Test]
    public void A_redirection_without_a_file_or_with_a_missing_input_fails_the_line()
    {
        var o = new StringWriter { NewLine = "\n" };
        var e = new StringWriter { NewLine = "\n" };
        int code = new ScenarioRunner(o, e, _dir).Run("host h1\nzonename >\nzonename < missing.bin\n", "bad.scn");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.EqualTo(1));
            Assert.That(e.ToString(), Does.Contain("bad.scn:2: '>' needs a file name"));
            Assert.That(e.ToString(), Does.Contain("bad.scn:3: cannot open ").And.Contain("missing.bin"));
        }
    }

    [Test]
    public void A_payload_larger_than_the_limit_is_refused_with_a_message()
    {
        var h = new CliHost();
        string big = Path.Combine(_dir, "big.json");
        File.WriteAllText(big, "{ \"alias\": \"" + new string('a', CommandInput.MaxBytes) + "\" }");
        var fromFile = h.Run("vmadm", "create", "-f", big);
        var fromStdin = Dispatcher.Run(h.World, h.Host, ["zonecfg", "-z", "web"], new MemoryStream(Encoding.UTF8.GetBytes(new string('#', CommandInput.MaxBytes + 1))));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(fromFile.ExitCode, Is.EqualTo(1));
            Assert.That(fromFile.Stderr, Does.Contain("is larger than 1 MiB"));
            Assert.That(fromStdin.ExitCode, Is.EqualTo(1));
            Assert.That(fromStdin.Stderr, Is.EqualTo("zonecfg: standard input is larger than 1 MiB, the most a command reads as one payload\n"));
            Assert.That(h.Host.Zones.Zones, Is.Empty);
        }
    }
}
