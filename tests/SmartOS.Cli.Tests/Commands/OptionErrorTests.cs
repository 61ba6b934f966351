namespace SmartOS.Cli.Tests.Commands;

/// <summary>
/// Commands read their options with Getopt from the getopt string their descriptor states: a bad
/// option and a missing value print getopt(3C)'s line, then the command's usage, with its exit
/// status; and every option the descriptor names is one its parser knows.
/// </summary>
public class OptionErrorTests
{
    private const string ZloginUsage = "usage: zlogin [-l user] [-S] [-C] zonename [command [args ...]]\n";
    private const string ZoneadmUsage = """
        usage:  zoneadm [-z <zone>] list [-cipv]
                zoneadm -z <zone> verify
                zoneadm -z <zone> install [-t <image uuid>] [-q <quota GiB>]
                zoneadm -z <zone> clone [-s <ZFS snapshot>] <source zone>
                zoneadm -z <zone> ready
                zoneadm -z <zone> boot
                zoneadm -z <zone> halt
                zoneadm -z <zone> reboot
                zoneadm -z <zone> shutdown [-r]
                zoneadm -z <zone> uninstall [-F]

        """;

    // zlogin.c: getopt before the zone name; usage() ends in exit(2).
    [TestCase("zlogin -Z web ls", 2, "zlogin: illegal option -- Z\n" + ZloginUsage)]
    [TestCase("zlogin -l", 2, "zlogin: option requires an argument -- l\n" + ZloginUsage)]
    [TestCase("zlogin -S", 2, ZloginUsage)]
    public void Zlogin_words_option_errors_as_zlogin_c(string line, int status, string err)
    {
        var r = new CliHost().Line(line);
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((status, err)));
    }

    // zoneadm.c: getopt(argc, argv, "?u:z:R:") before the subcommand, then each subcommand's own
    // getopt; '?' is usage, Z_USAGE (2).
    [TestCase("zoneadm -Z list", 2, "zoneadm: illegal option -- Z\n" + ZoneadmUsage)]
    [TestCase("zoneadm -z", 2, "zoneadm: option requires an argument -- z\n" + ZoneadmUsage)]
    [TestCase("zoneadm list -x", 2, "zoneadm: illegal option -- x\n" + ZoneadmUsage)]
    [TestCase("zoneadm -zweb uninstall -x", 2, "zoneadm: illegal option -- x\n" + ZoneadmUsage)]
    [TestCase("zoneadm -u not-a-uuid list", 1, "zoneadm: illegal UUID value specified\n")]
    [TestCase("zoneadm -z web -u 12 list", 1, "zoneadm: zone 'web': illegal UUID value specified\n")]
    [TestCase("zoneadm -R /a list", 1, "zoneadm: option -R is not supported by this zoneadm\n")]
    public void Zoneadm_words_option_errors_as_zoneadm_c(string line, int status, string err)
    {
        var r = new CliHost().Line(line);
        Assert.That((r.ExitCode, r.Stderr.Replace("\r\n", "\n")), Is.EqualTo((status, err.Replace("\r\n", "\n"))));
    }

    // zoneadm.c: -u's UUID names the zone (zonecfg_get_name_by_uuid); one that names none
    // leaves the zone -z named.
    [Test]
    public void Zoneadm_u_picks_the_zone_by_its_uuid()
    {
        const string Uuid = "6e0f2f5a-1c2d-4e3f-8a9b-0c1d2e3f4a5b";
        var h = new CliHost();
        Assert.That(h.WithStdin($$"""{ "uuid": "{{Uuid}}", "autoboot": false }""", "vmadm", "create").ExitCode, Is.Zero);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Line($"zoneadm -u {Uuid.ToUpperInvariant()} list -c").Stdout, Is.EqualTo(Uuid + "\n"));
            Assert.That(h.Line("zoneadm -z global -u 00000000-0000-0000-0000-000000000001 list").Stdout, Is.EqualTo("global\n"));
        }
    }

    [Test]
    public void Zoneadm_takes_its_zone_attached_to_z_as_getopt_does()
    {
        var r = new CliHost().Line("zoneadm -zglobal list");
        Assert.That((r.ExitCode, r.Stdout), Is.EqualTo((0, "global\n")));
    }

    /// <summary>Every option that takes a value, as the descriptor states it, run without one.</summary>
    private static IEnumerable<TestCaseData> ValueOptions()
    {
        foreach (var d in CommandRegistry.All)
        {
            string spec = d.Options.TrimStart(':');
            for (int i = 0; i + 1 < spec.Length; i++)
            {
                if (spec[i + 1] != ':' || spec[i] == ':') continue;
                yield return new TestCaseData(d.Name, "-" + spec[i]).SetName($"{d.Name} -{spec[i]}");
            }
            foreach (string decl in d.LongOptions)
            {
                string head = decl.Split('=')[0];
                if (head.EndsWith(':') && !head.EndsWith("::", StringComparison.Ordinal))
                    yield return new TestCaseData(d.Name, "--" + head.TrimEnd(':')).SetName($"{d.Name} --{head.TrimEnd(':')}");
            }
        }
    }

    // One source of truth: a value option the descriptor names is one the parser knows (it asks
    // for the value rather than calling the option unknown).
    [TestCaseSource(nameof(ValueOptions))]
    public void A_value_option_the_descriptor_names_is_known_to_the_parser(string command, string option)
    {
        var r = new CliHost().Run(command, option);
        string name = option.TrimStart('-');
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.Not.Zero);
            Assert.That(r.Stderr, Does.Not.Contain($"illegal option -- {name}\n")
                .And.Not.Contain($"invalid option -- '{name}'")
                .And.Not.Contain($"unrecognized option '{option}'")
                .And.Not.Contain($"option {option}: is unknown"));
            Assert.That(r.Stderr, Does.Contain("requires").Or.Contain("usage").IgnoreCase, "it asks for the value");
        }
    }

    private static IEnumerable<string> CommandsWithOptions()
        => CommandRegistry.All.Where(d => d.Options.Length > 0).Select(d => d.Name);

    // The other half of one source of truth: the parser accepts no option letter the descriptor
    // does not name.
    [TestCaseSource(nameof(CommandsWithOptions))]
    public void An_option_letter_the_descriptor_does_not_name_is_refused(string command)
    {
        CommandRegistry.TryGet(command, out var d);
        var h = new CliHost();
        var accepted = new List<char>();
        foreach (char c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        {
            if (d.Options.Contains(c)) continue;
            if (h.Run(command, "-" + c).ExitCode == 0) accepted.Add(c);
        }
        Assert.That(accepted, Is.Empty);
    }
}
