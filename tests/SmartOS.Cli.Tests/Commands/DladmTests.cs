using SmartOS.Kernel;
using SmartOS.Testing;
using SmartOS.Vnic;

namespace SmartOS.Cli.Tests.Commands;

public class DladmTests
{
    private static string[] A(string line) => CliHost.Split(line);

    [Test]
    public void Show_phys_lists_every_nic_with_illumos_columns()
    {
        var h = new CliHost(nics: 3);
        string[] lines = h.Ok("dladm", "show-phys").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(lines[0], Is.EqualTo("LINK         MEDIA                STATE      SPEED  DUPLEX    DEVICE"));
            Assert.That(lines, Has.Length.EqualTo(4));
            Assert.That(lines[1], Does.StartWith("e1000g0      Ethernet             down       0      unknown   e1000g0"));
            Assert.That(lines[3], Does.StartWith("e1000g2"));
        }
    }

    [Test]
    public void Show_phys_reports_a_wired_nic_up_at_its_speed()
    {
        var h = new CliHost();
        var e0 = (PhysLink)h.Host.Mac.Find("e1000g0")!;
        var e1 = (PhysLink)h.Host.Mac.Find("e1000g1")!;
        h.World.Connect(e0, e1, speedBps: 10_000_000_000);
        Assert.That(h.Ok("dladm", "show-phys", "-p", "-o", "link,state,speed,duplex", "e1000g0"), Is.EqualTo("e1000g0:up:10000:full\n"));
    }

    [Test]
    public void Show_phys_m_lists_factory_slots_and_their_users()
    {
        var h = new CliHost(nics: 1);
        h.Ok(A("dladm create-vnic -l e1000g0 -m factory -n 2 vnic0"));
        string o = h.Ok(A("dladm show-phys -m -p -o slot,inuse,client"));
        Assert.That(o, Does.Contain("primary:yes:e1000g0\n").And.Contain("2:yes:vnic0\n").And.Contain("1:no:--\n"));
    }

    [Test]
    public void Create_vnic_appears_in_show_vnic_and_show_link()
    {
        var h = new CliHost();
        h.Ok(A("dladm create-vnic -l e1000g0 -m 2:8:20:a:b:c -v 42 web0"));
        string vnic = h.Ok(A("dladm show-vnic"));
        string link = h.Ok(A("dladm show-link web0"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vnic, Does.StartWith("LINK         OVER         SPEED  MACADDRESS        MACADDRTYPE VID  ZONE\n"));
            Assert.That(vnic, Does.Contain("web0         e1000g0      0      2:8:20:a:b:c      fixed       42   --"));
            Assert.That(link, Does.Contain("web0        vnic      1500   down     --         e1000g0"));
        }
    }

    [Test]
    public void Parsable_output_escapes_colons_in_mac_addresses()
    {
        var h = new CliHost();
        h.Ok(A("dladm create-vnic -l e1000g0 -m 2:8:20:a:b:c web0"));
        Assert.That(h.Ok(A("dladm show-vnic -p -o link,macaddress,vid")), Is.EqualTo("web0:2\\:8\\:20\\:a\\:b\\:c:0\n"));
    }

    private static IEnumerable<TestCaseData> OutputFieldErrors() => DataFile.Cases("dladm-output-field-errors.txt", 3);

    // Data/dladm-output-field-errors.txt: ofmt_strerror's wording (usr/src/lib/libofmt/common/ofmt.c).
    [TestCaseSource(nameof(OutputFieldErrors))]
    public void Output_field_errors_are_worded_as_libofmt_words_them(DataCase c)
    {
        var h = new CliHost();
        var r = h.Run(A(c[0]));
        Assert.That((r.ExitCode, r.Stdout, r.Stderr), Is.EqualTo((c.Int(1), "", c[2])), c.Where);
    }

    [Test]
    public void An_unknown_field_in_human_output_is_left_out_with_a_warning()
    {
        var h = new CliHost();
        var r = h.Run(A("dladm show-link -o link,colour e1000g0"));
        Assert.That((r.ExitCode, r.Stdout, r.Stderr), Is.EqualTo((0, "LINK\ne1000g0\n", "dladm: warning: ignoring unknown output field: `colour'\n")));
    }

    // print_vnic: case VNIC_MAC_ADDR_TYPE_FACTORY: snprintf(..., gettext("factory, slot %d"), vnic->va_mac_slot)
    [TestCase("auto", "factory, slot 1")]
    [TestCase("factory", "factory, slot 1")]
    [TestCase("random", "random")]
    public void Mac_address_modes_are_reported_as_dladm_does(string mode, string type)
    {
        var h = new CliHost();
        h.Ok("dladm", "create-vnic", "-l", "e1000g0", "-m", mode, "vnic0");
        Assert.That(h.Ok(A("dladm show-vnic -p -o macaddrtype vnic0")), Is.EqualTo(type + "\n"));
    }

    [Test]
    public void Random_mac_keeps_the_requested_prefix()
    {
        var h = new CliHost();
        h.Ok(A("dladm create-vnic -l e1000g0 -m random -r 2:aa:bb vnic0"));
        Assert.That(h.Ok(A("dladm show-vnic -p -o macaddress vnic0")), Does.StartWith("2:aa:bb:"));
    }

    [Test]
    public void Auto_mac_on_an_etherstub_is_random()
    {
        var h = new CliHost();
        h.Ok(A("dladm create-etherstub stub0"));
        h.Ok(A("dladm create-vnic -l stub0 vnic0"));
        Assert.That(h.Ok(A("dladm show-vnic -p -o macaddrtype vnic0")), Is.EqualTo("random\n"));
    }

    [Test]
    public void Factory_slots_run_out()
    {
        var h = new CliHost(nics: 1);
        for (int i = 0; i < MacLayer.FactorySlots; i++) h.Ok("dladm", "create-vnic", "-l", "e1000g0", "-m", "factory", $"v{i}");
        var r = h.Run(A("dladm create-vnic -l e1000g0 -m factory v99"));
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((1, "dladm: vnic creation over e1000g0 failed: all factory MAC address slots are in use\n")));
    }

    private static IEnumerable<TestCaseData> BadInput() => DataFile.Cases("dladm-bad-input.txt", 2);

    [TestCaseSource(nameof(BadInput))]
    public void Bad_input_gets_an_illumos_message_and_changes_nothing(DataCase c)
    {
        var store = new MemoryConfigStore();
        var h = new CliHost(store: store);
        string before = h.Ok(A("dladm show-link -p -o link,class,mtu,over")) + h.Ok(A("dladm show-vnic -p -o link,macaddress,vid"));
        string? config = store.Read(MacLayer.ConfigName);
        var r = h.Run(A(c[0]));
        string after = h.Ok(A("dladm show-link -p -o link,class,mtu,over")) + h.Ok(A("dladm show-vnic -p -o link,macaddress,vid"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.Not.Zero);
            Assert.That(r.Stderr, Is.EqualTo(c[1]), c.Where);
            Assert.That(after, Is.EqualTo(before));
            Assert.That(store.Read(MacLayer.ConfigName), Is.EqualTo(config));
        }
    }

    // dladm.c: usage() prints every subcommand's synopsis and ends in exit(EXIT_FAILURE).
    [Test]
    public void Usage_errors_exit_1_as_dladm_usage_does()
    {
        var h = new CliHost();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Run("dladm").ExitCode, Is.EqualTo(1));
            Assert.That(h.Run(A("dladm frobnicate")).ExitCode, Is.EqualTo(1));
            Assert.That(h.Run(A("dladm create-vnic v0")).ExitCode, Is.EqualTo(1));
            Assert.That(h.Run("dladm").Stderr, Does.StartWith("usage:  dladm <subcommand> <args> ...\n    rename-link      <oldlink> <newlink>\n"));
        }
    }

    // dladm.c die_opterr: die("option '-%c' requires a value\nusage: %s", ...) and
    // die("unrecognized option '-%c'\nusage: %s", ...), with the subcommand's usage line from cmds[];
    // die() exits EXIT_FAILURE.
    [TestCase("dladm create-vnic -x -l e1000g0 v0", "dladm: unrecognized option '-x'\nusage:     create-vnic      [-t] -l <link> [-m <value> | auto |\n")]
    [TestCase("dladm show-vnic -o", "dladm: option '-o' requires a value\nusage:     show-vnic        [-pP] [-o <field>,..] [-l <link>] [-s] [<link>]\n")]
    [TestCase("dladm set-linkprop -p", "dladm: option '-p' requires a value\nusage:     set-linkprop     [-t] -p <prop>=<value>[,...] <name>\n")]
    public void Option_errors_are_worded_as_die_opterr_words_them(string line, string message)
    {
        var h = new CliHost();
        var r = h.Run(A(line));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.EqualTo(1));
            Assert.That(r.Stderr, Does.StartWith(message));
        }
    }

    [Test]
    public void Duplicate_mac_in_a_vlan_is_refused_but_allowed_in_another()
    {
        var h = new CliHost();
        h.Ok(A("dladm create-vnic -l e1000g0 -m 2:0:0:0:0:1 v0"));
        var r = h.Run(A("dladm create-vnic -l e1000g0 -m 2:0:0:0:0:1 v1"));
        Assert.That(r.Stderr, Is.EqualTo("dladm: vnic creation over e1000g0 failed: MAC address is already in use\n"));
        h.Ok(A("dladm create-vnic -l e1000g0 -m 2:0:0:0:0:1 -v 7 v2"));
    }

    [Test]
    public void Etherstub_with_vnics_cannot_be_deleted_until_they_are_gone()
    {
        var h = new CliHost();
        h.Ok(A("dladm create-etherstub stub0"));
        h.Ok(A("dladm create-vnic -l stub0 v0"));
        Assert.That(h.Run(A("dladm delete-etherstub stub0")).Stderr, Is.EqualTo("dladm: etherstub deletion failed: link busy\n"));
        h.Ok(A("dladm delete-vnic v0"));
        h.Ok(A("dladm delete-etherstub stub0"));
        // libofmt prints the header with the first row: with no rows, nothing at all.
        Assert.That(h.Ok(A("dladm show-etherstub")), Is.Empty);
    }

    [Test]
    public void Vnic_in_use_by_a_client_cannot_be_deleted_or_renamed()
    {
        var h = new CliHost();
        h.Ok(A("dladm create-vnic -l e1000g0 v0"));
        var client = ((PortLink)h.Host.Mac.Find("v0")!).OpenClient("ip");
        Assert.That(client, Is.Not.Null);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Run(A("dladm delete-vnic v0")).Stderr, Is.EqualTo("dladm: vnic deletion failed: link busy\n"));
            Assert.That(h.Run(A("dladm rename-link v0 v1")).Stderr, Is.EqualTo("dladm: rename operation failed: link busy\n"));
        }
        client!.Close();
        h.Ok(A("dladm delete-vnic v0"));
    }

    [Test]
    public void Vlans_are_created_shown_and_deleted()
    {
        var h = new CliHost();
        h.Ok(A("dladm create-vlan -l e1000g1 -v 300 vlan300"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("dladm show-vlan")), Is.EqualTo("LINK            VID      OVER         FLAGS\nvlan300         300      e1000g1      -----\n"));
            Assert.That(h.Run(A("dladm create-vlan -l e1000g1 -v 300 vlan301")).Stderr, Is.EqualTo("dladm: create operation over e1000g1 failed: object already exists\n"));
            Assert.That(h.Ok(A("dladm show-link -p -o class,over vlan300")), Is.EqualTo("vlan:e1000g1\n"));
        }
        h.Ok(A("dladm delete-vlan vlan300"));
        Assert.That(h.Ok(A("dladm show-vlan")), Is.Empty, "libofmt prints no header without rows");
    }

    [Test]
    public void Rename_link_renames_a_phys_and_what_is_over_it()
    {
        var h = new CliHost();
        h.Ok(A("dladm create-vnic -l e1000g0 v0"));
        h.Ok(A("dladm rename-link e1000g0 net0"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("dladm show-vnic -p -o link,over")), Is.EqualTo("v0:net0\n"));
            Assert.That(h.Ok(A("dladm show-phys -p -o link,device net0")), Is.EqualTo("net0:e1000g0\n"));
            Assert.That(h.Ok(A("kstat -p link:0:net0:opackets")), Is.EqualTo("link:0:net0:opackets\t0\n"));
        }
    }

    [Test]
    public void Mtu_is_a_link_property_bounded_by_the_link_below()
    {
        var h = new CliHost();
        h.Ok(A("dladm set-linkprop -p mtu=9000 e1000g0"));
        h.Ok(A("dladm create-vnic -l e1000g0 v0"));
        h.Ok(A("dladm set-linkprop -p mtu=9000 v0"));
        string shown = h.Ok(A("dladm show-linkprop -p mtu v0"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(shown, Is.EqualTo("LINK         PROPERTY        PERM VALUE          DEFAULT        POSSIBLE\nv0           mtu             rw   9000           1500           576-9000\n"));
            Assert.That(h.Run(A("dladm set-linkprop -p mtu=1500 e1000g0")).Stderr, Is.EqualTo("dladm: warning: cannot set link property 'mtu' on 'e1000g0': link busy\n"));
        }
        h.Ok(A("dladm reset-linkprop -p mtu v0"));
        Assert.That(h.Ok(A("dladm show-linkprop -c -o value -p mtu v0")), Is.EqualTo("1500\n"));
    }

    [Test]
    public void Show_link_s_counts_traffic()
    {
        var h = new CliHost();
        h.Ok(A("dladm create-etherstub stub0"));
        h.Ok(A("dladm create-vnic -l stub0 -m 2:0:0:0:0:1 a0"));
        h.Ok(A("dladm create-vnic -l stub0 -m 2:0:0:0:0:2 b0"));
        h.Ok(A("pktgen -d a0 -c 3 -s 100 --dst 2:0:0:0:0:2"));
        string o = h.Ok(A("dladm show-link -s -p -o link,ipackets,rbytes,ierrors,opackets,obytes,oerrors"));
        Assert.That(o, Does.Contain("a0:0:0:0:3:300:0\n").And.Contain("b0:3:300:0:0:0:0\n"));
        Assert.That(h.Ok(A("dladm show-link -s")), Does.StartWith("LINK         IPACKETS  RBYTES    IERRORS   OPACKETS  OBYTES    OERRORS\n"));
    }
}

public class DladmEdgeTests
{
    private static string[] A(string line) => CliHost.Split(line);

    [Test]
    public void A_persistent_vnic_over_a_temporary_etherstub_is_refused()
    {
        var h = new CliHost();
        h.Ok(A("dladm create-etherstub -t stub0"));
        var r = h.Run(A("dladm create-vnic -l stub0 v0"));
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((1, "dladm: vnic creation over stub0 failed: can't create persistent object on top of temporary object\n")));
        Assert.That(h.Host.Mac.Find("v0"), Is.Null);
        h.Ok(A("dladm create-vnic -t -l stub0 v0"));
    }

    [Test]
    public void A_vlan_cannot_take_the_nic_address_a_vnic_holds_in_that_vlan()
    {
        var h = new CliHost();
        var nicMac = ((SmartOS.Vnic.PhysLink)h.Host.Mac.Find("e1000g0")!).MacAddress.ToString();
        h.Ok("dladm", "create-vnic", "-l", "e1000g0", "-m", nicMac, "-v", "9", "v0");
        var r = h.Run(A("dladm create-vlan -l e1000g0 -v 9 vlan9"));
        Assert.That(r.Stderr, Is.EqualTo("dladm: create operation over e1000g0 failed: MAC address is already in use\n"));
    }
}
