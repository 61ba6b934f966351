using SmartOS.Vnic;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>dladm show-vnic as usr/src/cmd/dladm/dladm.c prints it: print_vnic's MACADDRTYPE and
/// vnic_stats/dump_vnic_stat's statistics (-s).</summary>
public class DladmVnicTests
{
    private static string[] A(string line) => CliHost.Split(line);

    private static void Count(CliHost h, string link, long ipackets, long rbytes, long opackets, long obytes)
    {
        var s = h.Host.Mac.Find(link)!.Stats;
        s.IPackets = ipackets; s.RBytes = rbytes; s.OPackets = opackets; s.OBytes = obytes;
    }

    // print_vnic: gettext("factory, slot %d"), vnic->va_mac_slot; a MACADDRTYPE this wide pushes the
    // columns after it right, as libofmt's overflow does.
    [Test]
    public void A_factory_address_shows_its_slot()
    {
        var h = new CliHost(nics: 1);
        h.Ok(A("dladm create-vnic -l e1000g0 -m factory -n 3 web0"));
        string o = h.Ok(A("dladm show-vnic -o link,macaddrtype,vid web0"));
        Assert.That(o, Is.EqualTo("LINK         MACADDRTYPE VID\nweb0         factory, slot 3 0\n"));
    }

    // dump_vnics_head: "\tipackets  rbytes      opackets  obytes          " and, only with a device
    // (-l), the device name first and "%ipkts  %opkts"; dump_vnic_stat: "%s" "\t%-10llu" "%-12llu"
    // "%-10llu" "%-12llu", then "\t%-6.1f" of the total or "\t-" when the total is zero.
    [Test]
    public void Show_vnic_s_prints_each_vnic_and_its_share_of_the_packets()
    {
        var h = new CliHost(nics: 1);
        h.Ok(A("dladm create-vnic -l e1000g0 v0"));
        h.Ok(A("dladm create-vnic -l e1000g0 v1"));
        Count(h, "v0", 30, 3000, 0, 0);
        Count(h, "v1", 10, 1000, 0, 0);
        Assert.That(h.Ok(A("dladm show-vnic -s")), Is.EqualTo(
            "\tipackets  rbytes      opackets  obytes          \n" +
            "v0\t30        3000        0         0           \t75.0  \t-\n" +
            "v1\t10        1000        0         0           \t25.0  \t-\n"));
    }

    // vnic_stats: "Show totals" when a vnic or a device was named and there is no interval.
    [Test]
    public void Show_vnic_s_l_prints_the_device_and_a_total_line()
    {
        var h = new CliHost(nics: 1);
        h.Ok(A("dladm create-vnic -l e1000g0 v0"));
        Count(h, "v0", 4, 400, 2, 200);
        Assert.That(h.Ok(A("dladm show-vnic -s -l e1000g0")), Is.EqualTo(
            "e1000g0\tipackets  rbytes      opackets  obytes          %ipkts  %opkts\n" +
            "Total\t4         400         2         200         \n" +
            "v0\t4         400         2         200         \t100.0 \t100.0 \n"));
    }

    // vnic_stats: die("device %s has no vnics"); do_show_vnic_common: die("the option -i can be used
    // only with -s").
    [TestCase("dladm show-vnic -s -l e1000g0", "dladm: device e1000g0 has no vnics\n")]
    [TestCase("dladm show-vnic -i 1", "dladm: the option -i can be used only with -s\n")]
    [TestCase("dladm show-vnic -l e1000g9", "dladm: invalid link name 'e1000g9': object not found\n")]
    public void Show_vnic_errors_are_worded_as_dladm_words_them(string line, string message)
    {
        var h = new CliHost(nics: 1);
        var r = h.Run(A(line));
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((1, message)));
    }
}
