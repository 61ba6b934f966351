using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Vnic;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>dladm create-overlay, delete-overlay, modify-overlay and show-overlay (dladm(8),
/// overlay(7)), and vmadm nics on fabric nic tags (sdc_overlay/VNID).</summary>
public class DladmOverlayTests
{
    private static string[] A(string line) => CliHost.Split(line);

    private const string Direct = "-e vxlan -s direct -v 100 -p vxlan/listen_ip=10.0.1.10,direct/dest_ip=10.0.1.20,direct/dest_port=4789";

    private static CliHost WithOverlay(string name = "ovl0")
    {
        var h = new CliHost(nics: 1);
        h.Ok(A($"dladm create-overlay {Direct} {name}"));
        return h;
    }

    [Test]
    public void Show_overlay_lists_each_property_with_its_permission_requirement_value_default_and_range()
    {
        var h = WithOverlay();
        Assert.That(h.Ok(A("dladm show-overlay")), Is.EqualTo(
            // dladm.c's overlay_fields: LINK and PROPERTY 19 wide, PERM 5, REQ 4, VALUE 11,
            // DEFAULT and POSSIBLE 10.
            "LINK               PROPERTY           PERM REQ VALUE      DEFAULT   POSSIBLE\n" +
            "ovl0               mtu                rw   -   1400       1400      576-9000\n" +
            "ovl0               vnetid             rw   -   100        --        0-16777215\n" +
            "ovl0               encap              r-   -   vxlan      --        vxlan\n" +
            "ovl0               varpd/id           r-   -   2          --        --\n" +
            "ovl0               search             r-   -   direct     --        " + string.Join(",", h.Host.Mac.SearchPlugins.Names) + "\n" +
            "ovl0               vxlan/listen_ip    rw   y   10.0.1.10  --        --\n" +
            "ovl0               vxlan/listen_port  rw   y   4789       4789      1-65535\n" +
            "ovl0               direct/dest_ip     rw   y   10.0.1.20  --        --\n" +
            "ovl0               direct/dest_port   rw   y   4789       --        1-65535\n"));
        Assert.That(h.Ok(A("dladm show-overlay -p -o property,value ovl0")), Does.Contain("vnetid:100\n"));
        Assert.That(h.Ok(A("dladm show-overlay -f")), Is.EqualTo(
            "LINK                STATUS  DETAILS\novl0                ONLINE  -\n"));
        Assert.That(h.Ok(A("dladm show-overlay -t -p -o link,target,destination")), Is.EqualTo("ovl0:*\\:*\\:*\\:*\\:*\\:*:10.0.1.20\\:4789\n"),
            "a point-to-point overlay's one entry answers for every MAC");
        Assert.That(h.Ok(A("dladm show-overlay -t")), Is.EqualTo(
            "LINK                TARGET            DESTINATION\n" +
            "ovl0                *:*:*:*:*:*       10.0.1.20:4789\n"));
        Assert.That(h.Fails(A("dladm show-overlay -t -p")).Stderr, Is.EqualTo("dladm: output fields must be specified in parsable mode\n"));
        Assert.That(h.Fails(A("dladm show-overlay -f -t")).Stderr, Is.EqualTo("dladm: the option -f cannot be used with -t\n"));
        // Each named link in turn: one that is missing or not an overlay is warned about, the rest
        // are shown, and the exit status is 1.
        var some = h.Run(A("dladm show-overlay -p -o link,property nosuch0 e1000g0 ovl0"));
        Assert.That(some.ExitCode, Is.EqualTo(1));
        Assert.That(some.Stderr, Is.EqualTo("dladm: failed to find nosuch0: object not found\ndladm: e1000g0 is not an overlay\n"));
        Assert.That(some.Stdout, Does.StartWith("ovl0:mtu\novl0:vnetid\n"));
        Assert.That(h.Ok(A("dladm show-link -p -o link,class,mtu,state ovl0")), Is.EqualTo("ovl0:overlay:1400:up\n"));
    }

    [TestCase("dladm create-overlay -s direct -v 1 o0", "dladm: missing required encapsulation plugin")]
    [TestCase("dladm create-overlay -e vxlan -v 1 o0", "dladm: missing required search plugin")]
    [TestCase("dladm create-overlay -e vxlan -s direct o0", "dladm: missing required virtual network id")]
    [TestCase("dladm create-overlay -s direct o0", "dladm: missing required virtual network id")]
    [TestCase("dladm create-overlay -e vxlan -s direct -v 1", "dladm: missing device name")]
    [TestCase("dladm create-overlay -e vxlan -s direct -v 16777216 o0", "dladm: overlay creation failed: invalid argument: vnetid 16777216 is outside vxlan's range 0-16777215")]
    [TestCase("dladm create-overlay -e vxlan -s direct -v -1 o0", "dladm: couldn't parse virtual networkd id: -1")]
    [TestCase("dladm create-overlay -e vxlan -s direct -v ten o0", "dladm: couldn't parse virtual networkd id: ten")]
    [TestCase("dladm create-overlay -e geneve -s direct -v 1 o0", "dladm: overlay creation failed: unknown encapsulation plugin 'geneve'")]
    [TestCase("dladm create-overlay -e vxlan -s nosuch -v 1 o0", "dladm: overlay creation failed: unknown search plugin 'nosuch'")]
    [TestCase("dladm create-overlay -e vxlan -s direct -v 1 -p vxlan/listen_ip=10.0.1.10 o0", "dladm: overlay creation failed: missing required property direct/dest_ip")]
    [TestCase("dladm create-overlay -e vxlan -s direct -v 1 -p direct/dest_ip=10.0.1.1,direct/dest_port=4789 o0", "dladm: overlay creation failed: missing required property vxlan/listen_ip")]
    [TestCase("dladm create-overlay -e vxlan -s direct -v 1 -p vxlan/listen_ip=10.0.1.10,direct/dest_ip=nowhere,direct/dest_port=4789 o0", "dladm: overlay creation failed: direct/dest_ip: invalid value")]
    [TestCase("dladm create-overlay -e vxlan -s direct -v 1 -p vxlan/listen_ip=10.0.1.10,direct/dest_ip=10.0.1.1,direct/dest_port=0 o0", "dladm: overlay creation failed: direct/dest_port: invalid value")]
    [TestCase("dladm create-overlay -e vxlan -s direct -v 1 -p vxlan/listen_ip=10.0.1.10,vxlan/listen_port=70000,direct/dest_ip=10.0.1.1,direct/dest_port=4789 o0", "dladm: overlay creation failed: vxlan/listen_port: invalid value")]
    [TestCase("dladm create-overlay -e vxlan -s direct -v 1 -p vxlan/listen_ip=fd00::1,direct/dest_ip=10.0.1.1,direct/dest_port=4789 o0", "dladm: overlay creation failed: vxlan/listen_ip: IPv6 underlays are not supported here")]
    [TestCase("dladm create-overlay -e vxlan -s direct -v 1 -p vxlan/listen_ip=10.0.1.10,direct/dest_ip=10.0.1.1,direct/dest_port=4789,files/config=/x o0", "dladm: overlay creation failed: files/config: invalid property")]
    [TestCase("dladm create-overlay -e vxlan -s direct -v 1 -p vnetid=5,vxlan/listen_ip=10.0.1.10 o0", "dladm: overlay creation failed: property vnetid cannot be set with -p: read-only property")]
    [TestCase("dladm create-overlay -e vxlan -s direct -v 1 -p vxlan/listen_ip=10.0.1.10,direct/dest_ip=10.0.1.1,direct/dest_port=4789,mtu=100 o0", "dladm: overlay creation failed: mtu: invalid value")]
    [TestCase("dladm create-overlay -e vxlan -s direct -v 1 -p vxlan/listen_ip=10.0.1.10,direct/dest_ip=10.0.1.1,direct/dest_port=4789 0bad", "dladm: invalid link name '0bad'")]
    public void Create_overlay_refuses_bad_input_with_a_clear_message_and_creates_nothing(string line, string message)
    {
        var h = new CliHost(nics: 1);
        var r = h.Fails(A(line));
        Assert.That(r.Stderr, Does.StartWith(message));
        Assert.That(h.Host.Mac.Links.OfType<OverlayLink>(), Is.Empty);
        Assert.That(h.Host.Mac.PersistentLinks, Is.Empty);
    }

    [Test]
    public void A_second_overlay_for_a_vnid_on_one_listen_address_is_refused_and_a_name_in_use_too()
    {
        var h = WithOverlay();
        Assert.That(h.Fails(A($"dladm create-overlay {Direct} ovl1")).Stderr,
            Is.EqualTo("dladm: overlay creation failed: vnetid 100 already has an overlay on this listen address: object already exists\n"));
        Assert.That(h.Fails(A($"dladm create-overlay {Direct.Replace("-v 100", "-v 101")} ovl0")).Stderr,
            Is.EqualTo("dladm: overlay creation failed: object already exists\n"));
    }

    [Test]
    public void A_listen_port_a_global_zone_program_holds_is_refused()
    {
        var h = new CliHost(nics: 1);
        var s = h.Host.Stack.OpenUdpSocket();
        Assert.That(s.Bind(IpAddress.AnyV4, 4789), Is.EqualTo(Netstack.NetError.None));
        Assert.That(h.Fails(A($"dladm create-overlay {Direct} ovl0")).Stderr, Is.EqualTo("dladm: overlay creation failed: vxlan/listen_ip 10.0.1.10 port 4789: address already in use\n"));
    }

    [Test]
    public void An_mtu_the_underlay_cannot_carry_is_refused_at_create_and_at_set_linkprop()
    {
        var h = new CliHost(nics: 1);
        h.Ok(A("dladm create-vnic -l e1000g0 under0"));
        h.Ok(A("ipadm create-if under0"));
        h.Ok(A("ipadm create-addr -T static -a 10.0.1.10/24 under0/v4"));
        // 1500 - 20 (IP) - 8 (UDP) = 1472 for VXLAN (8) and the inner frame (14 + 4 tag + mtu).
        Assert.That(h.Fails(A($"dladm create-overlay {Direct},mtu=1447 ovl0")).Stderr,
            Does.StartWith("dladm: overlay creation failed: mtu: the underlay cannot carry 26 bytes of encapsulation over it: MTU check failed"));
        h.Ok(A($"dladm create-overlay {Direct},mtu=1446 ovl0"));
        Assert.That(h.Fails(A("dladm set-linkprop -p mtu=1450 ovl0")).Stderr, Does.Contain("MTU check failed, MTU outside of device's supported range"));
        h.Ok(A("dladm set-linkprop -p mtu=1300 ovl0"));
        Assert.That(h.Ok(A("dladm show-linkprop -c -o value -p mtu ovl0")), Is.EqualTo("1300\n"));
    }

    [Test]
    public void An_overlay_with_a_vnic_is_busy_and_delete_overlay_names_only_overlays()
    {
        var h = WithOverlay();
        h.Ok(A("dladm create-vnic -l ovl0 -v 5 tenant0"));
        Assert.That(h.Ok(A("dladm show-vnic -p -o link,over,vid tenant0")), Is.EqualTo("tenant0:ovl0:5\n"));
        Assert.That(h.Fails(A("dladm delete-overlay ovl0")).Stderr, Is.EqualTo("dladm: failed to delete ovl0: link busy\n"));
        Assert.That(h.Fails(A("dladm delete-overlay tenant0")).Stderr, Is.EqualTo("dladm: failed to delete tenant0: invalid argument\n"));
        h.Ok(A("dladm delete-vnic tenant0"));
        h.Ok(A("dladm delete-overlay ovl0"));
        Assert.That(h.Host.Mac.Find("ovl0"), Is.Null);
        Assert.That(h.Host.Mac.PersistentLinks, Is.Empty);
        Assert.That(h.Fails(A("dladm delete-overlay ovl0")).Stderr, Is.EqualTo("dladm: failed to delete ovl0: object not found\n"));
    }

    [Test]
    public void A_renamed_overlay_keeps_its_counters_under_its_new_name_and_its_vnics()
    {
        var h = WithOverlay();
        h.Ok(A("dladm create-vnic -l ovl0 tenant0"));
        h.Ok(A("dladm rename-link ovl0 ovl9"));
        Assert.That(h.Ok(A("kstat -p overlay:0:ovl9:encap")), Is.EqualTo("overlay:0:ovl9:encap\t0\n"));
        Assert.That(h.Ok(A("dladm show-vnic -p -o link,over")), Is.EqualTo("tenant0:ovl9\n"));
        Assert.That(h.Host.Mac.FindPersistent("tenant0")!.Over, Is.EqualTo("ovl9"));
    }

    [Test]
    public void Modify_overlay_needs_one_operation_and_a_direct_overlay_has_no_target_table()
    {
        var h = WithOverlay();
        // do_modify_overlay's words for each refusal.
        Assert.That(h.Fails(A("dladm modify-overlay ovl0")).Stderr, Is.EqualTo("dladm: need to specify one of -d, -f, or -s\n"));
        Assert.That(h.Fails(A("dladm modify-overlay -f -d 2:8:20:0:0:1 ovl0")).Stderr, Is.EqualTo("dladm: only one of -d, -f, or -s may be used\n"));
        Assert.That(h.Fails(A("dladm modify-overlay -f")).Stderr, Is.EqualTo("dladm: missing required overlay device\n"));
        Assert.That(h.Fails(A("dladm modify-overlay -f ovl0 ovl1")).Stderr, Is.EqualTo("dladm: only one overlay device may be specified\n"));
        Assert.That(h.Fails(A("dladm modify-overlay -d 2:8:20:0:0:zz ovl0")).Stderr, Is.EqualTo("dladm: invalid mac specification: 2:8:20:0:0:zz\n"));
        Assert.That(h.Fails(A("dladm modify-overlay -s 2:8:20:0:0:1 ovl0")).Stderr, Is.EqualTo("dladm: malformed value, expected mac=dest, got: 2:8:20:0:0:1\n"));
        Assert.That(h.Fails(A("dladm modify-overlay -s 2:8:20:0:0:1=10.0.0.1 ovl0")).Stderr,
            Is.EqualTo("dladm: failed to set target 2:8:20:0:0:1 for overlay target cache ovl0: invalid argument\n"));
        Assert.That(h.Fails(A("dladm modify-overlay -s 2:8:20:0:0:1=10.0.0.1:4789 ovl0")).Stderr,
            Is.EqualTo("dladm: failed to set target 2:8:20:0:0:1 for overlay target cache ovl0: operation not supported\n"));
        Assert.That(h.Fails(A("dladm modify-overlay -d 2:8:20:0:0:1 ovl0")).Stderr,
            Is.EqualTo("dladm: failed to flush target 2:8:20:0:0:1 from overlay target cache ovl0: operation not supported\n"));
        Assert.That(h.Fails(A("dladm modify-overlay -f ovl0")).Stderr, Is.EqualTo("dladm: failed to flush target cache for overlay ovl0: operation not supported\n"));
        Assert.That(h.Fails(A("dladm modify-overlay -f nosuch0")).Stderr, Is.EqualTo("dladm: failed to find overlay nosuch0: object not found\n"));
    }

    [Test]
    public void A_temporary_overlay_is_not_persisted_and_a_persistent_one_comes_back_with_its_mtu()
    {
        string root = Directory.CreateTempSubdirectory("smartos-overlay-").FullName;
        try
        {
            var world = new Zones.World();
            var h = world.AddHost("h1", 1, new FileConfigStore(root));
            Assert.That(Dispatcher.Run(world, h, A($"dladm create-overlay {Direct} ovl0")).ExitCode, Is.Zero);
            Assert.That(Dispatcher.Run(world, h, A("dladm set-linkprop -p mtu=1200 ovl0")).ExitCode, Is.Zero);
            Assert.That(Dispatcher.Run(world, h, A($"dladm create-overlay -t {Direct.Replace("-v 100", "-v 7")} tmp0")).ExitCode, Is.Zero);
            var again = new Zones.World().AddHost("h1", 1, new FileConfigStore(root));
            Assert.That(again.BootProblems, Is.Empty);
            var o = again.Mac.Find("ovl0") as OverlayLink;
            using (Assert.EnterMultipleScope())
            {
                Assert.That(o?.Vnid, Is.EqualTo(100));
                Assert.That(o?.Mtu, Is.EqualTo(1200));
                Assert.That(again.Mac.Find("tmp0"), Is.Null);
            }
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Test]
    public void A_vmadm_nic_on_a_fabric_tag_gets_a_vnic_over_that_overlay_in_its_vlan_and_a_missing_overlay_is_refused()
    {
        var h = new CliHost(nics: 1);
        const string json = "{ \"alias\": \"t1\", \"brand\": \"joyent-minimal\", \"nics\": [ { \"nic_tag\": \"sdc_overlay/4567\", \"vlan_id\": 12, \"ips\": [\"192.168.7.2/24\"] } ] }";
        var r = h.WithStdin(json, "vmadm", "create");
        Assert.That(r.ExitCode, Is.Not.Zero);
        Assert.That(r.Stderr, Does.Contain("Invalid nic tag \"sdc_overlay/4567\": overlay sdc_overlay4567 with vnetid 4567 does not exist"));
        h.Ok(A(Direct.Replace("-v 100", "-v 4567").Insert(0, "dladm create-overlay ") + " sdc_overlay4567"));
        r = h.WithStdin(json, "vmadm", "create");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        Assert.That(h.Ok(A("dladm show-vnic -p -o over,vid")), Is.EqualTo("sdc_overlay4567:12\n"));
    }
}
