using SmartOS.Kernel;
using SmartOS.Vnic;

namespace SmartOS.Netstack.Tests;

/// <summary>
/// ipadm's show-if, show-addr and show-prop are libofmt tables in illumos's ipadm.c, with these field
/// widths: show_if_fields IFNAME 11, STATE 9, CURRENT 13, PERSISTENT 11; show_addr_fields ADDROBJ 18,
/// TYPE 9, STATE 13, CURRENT 8, PERSISTENT 11, ADDR 46 (default fields addrobj,type,state,addr);
/// modprop_fields PROTO 6, PROPERTY 22, PERM 5, CURRENT 13, PERSISTENT 13, DEFAULT 13, POSSIBLE 15.
/// </summary>
public class IpadmTableTests
{
    private sealed record Result(int Status, string Out, string Err);

    private static Result Run(World w, IpStack stack, string command)
    {
        string[] argv = command.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(Programs.TryGet(argv[0], out var run), Is.True, argv[0]);
        var o = new StringWriter { NewLine = "\n" };
        var e = new StringWriter { NewLine = "\n" };
        var ctx = new ProgramContext
        {
            Out = o, Err = e, Cancel = CancellationToken.None, Stack = stack,
            OpenLink = name => (w.Mac.Find(name) as PortLink)?.OpenClient("ip"),
        };
        int status = w.Await(() => run(ctx, argv[1..]), 60 * Time.Second);
        return new Result(status, o.ToString(), e.ToString());
    }

    private static (World W, IpStack S) Stack(string vnic)
    {
        var w = new World();
        w.Stub("stub0");
        w.Mac.CreateVnic(vnic, "stub0", new MacLayer.MacRequest(MacAddressType.Auto), 0, true, out _);
        var s = new IpStack("z", w.Scheduler, w.Pool, w.Random, w.Kstats);
        Assert.That(Run(w, s, $"ipadm create-if {vnic}").Status, Is.Zero);
        Assert.That(Run(w, s, $"ipadm create-addr -T static -a 192.168.5.10/24 {vnic}/v4").Status, Is.Zero);
        return (w, s);
    }

    [Test]
    public void Show_if_lets_a_name_wider_than_IFNAME_11_push_STATE_and_takes_it_back_from_its_padding()
    {
        var (w, s) = Stack("vnic12345678");
        Assert.That(Run(w, s, "ipadm show-if vnic12345678").Out, Is.EqualTo(
            "IFNAME     STATE    CURRENT      PERSISTENT\n" +
            "vnic12345678 ok     bm--------46 ---\n"));
    }

    [Test]
    public void Show_addr_o_all_prints_every_field_of_show_addr_fields_in_its_width()
    {
        var (w, s) = Stack("vnic9");
        Assert.That(Run(w, s, "ipadm show-addr -o all vnic9/v4").Out, Is.EqualTo(
            "ADDROBJ           TYPE     STATE        CURRENT PERSISTENT ADDR\n" +
            "vnic9/v4          static   ok           U----   ---        192.168.5.10/24\n"));
    }

    [Test]
    public void Show_addr_p_escapes_the_colons_of_an_IPv6_address()
    {
        var (w, s) = Stack("vnic9");
        Assert.That(Run(w, s, "ipadm show-addr -p -o addrobj,addr").Out, Is.EqualTo(
            "lo0/v4:127.0.0.1/8\nvnic9/v4:192.168.5.10/24\nlo0/v6:\\:\\:1/128\n"));
    }

    [Test]
    public void Show_addr_p_without_o_is_refused_as_ipadm_refuses_it()
    {
        var (w, s) = Stack("vnic9");
        var r = Run(w, s, "ipadm show-addr -p");
        Assert.That((r.Status, r.Out, r.Err), Is.EqualTo((1, "", "ipadm: -p requires -o\n")));
    }

    [Test]
    public void Show_if_with_an_unknown_field_warns_and_prints_the_others()
    {
        var (w, s) = Stack("vnic9");
        var r = Run(w, s, "ipadm show-if -o ifname,bogus vnic9");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Status, Is.Zero);
            Assert.That(r.Out, Is.EqualTo("IFNAME\nvnic9\n"));
            Assert.That(r.Err, Is.EqualTo("ipadm: warning: ignoring unknown output field: `bogus'\n"));
        }
    }

    [Test]
    public void Show_if_p_without_o_is_libofmts_parsable_mode_error()
    {
        var (w, s) = Stack("vnic9");
        var r = Run(w, s, "ipadm show-if -p");
        Assert.That((r.Status, r.Err), Is.EqualTo((1, "ipadm: output fields must be specified in parsable mode\n")));
    }

    [Test]
    public void Show_if_with_an_unknown_option_says_so_in_die_opterrs_words()
    {
        var (w, s) = Stack("vnic9");
        var r = Run(w, s, "ipadm show-if -x");
        Assert.That((r.Status, r.Err), Is.EqualTo((1, "ipadm: unrecognized option '-x'\nusage: \tshow-if\t\t[[-p] -o <field>,...] [<interface>]\n\n")));
    }

    [Test]
    public void Show_prop_c_prints_the_chosen_fields_parsably()
    {
        var (w, s) = Stack("vnic9");
        Assert.That(Run(w, s, "ipadm show-prop -c -o property,current,persistent ipv4").Out, Is.EqualTo("forwarding:off:\nttl:255:\n"));
    }
}
