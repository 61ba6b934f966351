using SmartOS.Zones;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>Names and sizes are checked on input against the limits SmartOS sets (issue 20, item 7;
/// README, "Configuration files: bad records and limits").</summary>
public class InputLimitTests
{
    private static string[] A(string line) => CliHost.Split(line);

    [Test]
    public void A_ten_million_character_alias_is_refused()
    {
        var h = new CliHost();

        var r = h.WithStdin($$"""{ "alias": "{{new string('a', 10_000_000)}}" }""", "vmadm", "create");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.Not.Zero);
            // Standard input is read up to the 1 MiB every command takes as one payload (CommandInput).
            Assert.That(r.Stderr, Is.EqualTo("Failed to create VM: standard input is larger than 1 MiB, the most a command reads as one payload\n"));
            Assert.That(h.Host.Zones.Zones, Is.Empty);
        }
    }

    [Test]
    public void A_ten_million_character_alias_given_as_an_argument_is_refused()
    {
        var h = new CliHost();
        var c = h.WithStdin("""{ "alias": "a" }""", "vmadm", "create");
        string uuid = c.Stderr.Split(' ')[^1].Trim();

        var r = h.Run("vmadm", "update", uuid, "alias=" + new string('a', 10_000_000));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.Not.Zero);
            Assert.That(r.Stderr, Does.Contain("alias").And.Length.LessThan(300));
            Assert.That(h.Host.Zones.Zones.Single().Config.Vm!.Alias, Is.EqualTo("a"));
        }
    }

    [Test]
    public void The_longest_alias_smartos_stores_is_taken_and_one_byte_more_is_refused()
    {
        var h = new CliHost();

        var ok = h.WithStdin($$"""{ "alias": "{{new string('a', VmModel.MaxAliasBytes)}}" }""", "vmadm", "create");
        var tooLong = h.WithStdin($$"""{ "alias": "{{new string('a', VmModel.MaxAliasBytes + 1)}}" }""", "vmadm", "create");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ok.ExitCode, Is.Zero, ok.Stderr);
            Assert.That(tooLong.Stderr, Does.Contain("alias"));
        }
    }

    [Test]
    public void An_alias_that_is_too_long_is_refused_by_vmadm_update()
    {
        var h = new CliHost();
        var r = h.WithStdin("""{ "alias": "a" }""", "vmadm", "create");
        string uuid = r.Stderr.Split(' ')[^1].Trim();

        var u = h.WithStdin($$"""{ "alias": "{{new string('b', 5000)}}" }""", "vmadm", "update", uuid);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(u.ExitCode, Is.Not.Zero);
            Assert.That(u.Stderr, Does.Contain("alias"));
            Assert.That(h.Ok(A($"vmadm get {uuid}")), Does.Contain("\"alias\": \"a\""));
        }
    }

    [Test]
    public void A_twenty_megabyte_payload_is_refused_with_a_clear_message()
    {
        var h = new CliHost();
        string payload = $$"""{ "alias": "x", "resolvers": [{{string.Join(',', Enumerable.Repeat("\"8.8.8.8\"", 2_000_000))}}] }""";

        var r = h.WithStdin(payload, "vmadm", "create");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.Not.Zero);
            Assert.That(r.Stderr, Is.EqualTo("Failed to create VM: standard input is larger than 1 MiB, the most a command reads as one payload\n"));
            Assert.That(VmModel.MaxPayloadBytes, Is.EqualTo(CommandInput.MaxBytes), "the model's own limit and the reader's agree");
            Assert.That(h.Host.Zones.Zones, Is.Empty);
        }
    }

    [Test]
    public void A_zone_name_longer_than_64_characters_is_refused_by_zonecfg()
    {
        var h = new CliHost();

        var r = h.Run("zonecfg", "-z", new string('z', 65), "create; set zonepath=/zones/z");

        Assert.That(r.ExitCode, Is.Not.Zero);
    }

    [Test]
    public void A_zonepath_longer_than_maxpathlen_is_refused()
    {
        var h = new CliHost();

        var r = h.Run("zonecfg", "-z", "web", $"create; set zonepath=/{new string('p', 1100)}");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.Not.Zero);
            Assert.That(r.Stderr.Length, Is.LessThan(400));
            Assert.That(h.Host.Zones.Zones, Is.Empty);
        }
    }

    [Test]
    public void A_link_name_of_32_characters_is_refused_and_31_is_taken()
    {
        var h = new CliHost();
        string ok = new string('a', 30) + "0";
        string tooLong = new string('a', 31) + "0";

        h.Ok(A($"dladm create-etherstub {ok}"));
        var r = h.Fails(A($"dladm create-etherstub {tooLong}"));

        Assert.That(r.Stderr, Is.EqualTo($"dladm: invalid link name '{tooLong}'\n"));
    }

    [Test]
    public void A_long_bad_name_is_not_echoed_in_full()
    {
        var h = new CliHost();
        string name = new string('a', 100_000) + "0";

        var r = h.Fails("dladm", "create-etherstub", name);

        Assert.That(r.Stderr.Length, Is.LessThan(300));
    }

    [Test]
    public void A_nic_tag_name_of_31_characters_is_refused()
    {
        var h = new CliHost();

        var r = h.Fails(A($"nictagadm add {new string('t', 31)} e1000g0"));

        Assert.That(r.Stderr, Does.Contain("nic tag name is invalid"));
    }

    [Test]
    public void A_flow_name_longer_than_maxflownamelen_is_refused()
    {
        var h = new CliHost();

        var r = h.Fails(A($"flowadm add-flow -l e1000g0 -a transport=tcp {new string('f', 128)}"));

        Assert.That(r.Stderr, Is.EqualTo("flowadm: flow name too long\n"));
    }

    [Test]
    public void A_capped_memory_beyond_vmadms_limit_is_refused_by_zonecfg()
    {
        var h = new CliHost();

        var r = h.Run("zonecfg", "-z", "web", "create; set zonepath=/zones/web; add capped-memory; set physical=2000T; end");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.Not.Zero);
            Assert.That(r.Stderr, Does.Contain("physical: '2000T' is larger than 1024T"));
            Assert.That(h.Host.Zones.Zones, Is.Empty);
        }
    }

    [Test]
    public void A_quota_beyond_a_64_bit_byte_count_is_refused_by_vmadm()
    {
        var h = new CliHost();

        var r = h.WithStdin("""{ "alias": "q", "quota": 9223372036854775807 }""", "vmadm", "create");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.Not.Zero);
            Assert.That(r.Stderr, Is.EqualTo("Invalid value(s) for: quota\n"));
        }
    }
}
