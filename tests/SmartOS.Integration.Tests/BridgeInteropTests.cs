using System.Globalization;
using SmartOS.Kernel.Wire;
using SmartOS.Vnic;

namespace SmartOS.Integration.Tests;

/// <summary>
/// Our bridge against Linux's (issue 16): a real-time host bridges its two NICs, each a TAP device
/// whose Linux end is a port of a Linux bridge with STP on, in a network namespace of the test's
/// own. The two bridges and the two TAPs make a loop; both run 802.1D STP (Linux's kernel STP is
/// 802.1D-1998 too), must agree on one root, and block the same loop: exactly one port of the four,
/// on the bridge that is not root. Short timers on both sides (forward delay 4 s, hello 1 s, max age
/// 6 s) keep it to about ten seconds. Run only as root with /dev/net/tun, ip(8) and the kernel's
/// bridge; otherwise ignored, with the reason.
/// </summary>
[NonParallelizable]
public class BridgeInteropTests
{
    private static readonly TimeSpan s_converge = TimeSpan.FromSeconds(40);

    private NetNs? _ns;
    private TapNic? _tap0, _tap1;
    private RealTimeHost? _rt;
    private string _t0 = "", _t1 = "";

    [SetUp]
    public void Prerequisites()
    {
        string? missing = LinuxNet.MissingPrerequisite();
        if (missing != null) Assert.Ignore(missing);
    }

    [TearDown]
    public void Teardown()
    {
        try
        {
            _rt?.Dispose();
            _tap0?.Dispose();
            _tap1?.Dispose();
        }
        finally
        {
            _ns?.Dispose();
        }
    }

    /// <summary>The Linux side: br0 in the namespace with STP and short timers, the TAPs its ports.</summary>
    private void LinuxBridge(int priority)
    {
        _ns = new NetNs();
        string suffix = LinuxNet.Suffix();
        _t0 = "smb0" + suffix;
        _t1 = "smb1" + suffix;
        _tap0 = TapNic.TryOpen(_t0, out string? e0);
        Assert.That(_tap0, Is.Not.Null, e0);
        _tap1 = TapNic.TryOpen(_t1, out string? e1);
        Assert.That(_tap1, Is.Not.Null, e1);
        var add = _ns.Exec("ip", "link", "add", "br0", "type", "bridge", "stp_state", "1", "forward_delay", "400", "hello_time", "100",
            "max_age", "600", "priority", priority.ToString(CultureInfo.InvariantCulture));
        if (add.Code != 0) Assert.Ignore($"this kernel cannot make a bridge with STP: {add.Err}");
        foreach (string t in (string[])[_t0, _t1])
        {
            LinuxNet.Must("ip", "link", "set", t, "netns", _ns.Name);
            LinuxNet.Must("ip", "-n", _ns.Name, "link", "set", t, "master", "br0");
            LinuxNet.Must("ip", "-n", _ns.Name, "link", "set", t, "up");
        }
        LinuxNet.Must("ip", "-n", _ns.Name, "link", "set", "br0", "up");
    }

    private void OurBridge(int priority)
    {
        _rt = new RealTimeHost(nics: 2);
        var e0 = (PhysLink)_rt.Host.Mac.Find("e1000g0")!;
        var e1 = (PhysLink)_rt.Host.Mac.Find("e1000g1")!;
        _rt.OnLoop(() =>
        {
            _tap0!.Start(e0, _rt.Driver);
            _tap1!.Start(e1, _rt.Driver);
            return 0;
        });
        _rt.Ok("dladm", "create-bridge", "-p", priority.ToString(CultureInfo.InvariantCulture), "-d", "4", "-h", "1", "-m", "6",
            "-l", "e1000g0", "-l", "e1000g1", "br");
    }

    private string LinuxRead(string path) => _ns!.Exec("cat", path).Out.Trim();

    /// <summary>Linux's brport/state: 0 disabled, 1 listening, 2 learning, 3 forwarding, 4 blocking.</summary>
    private string[] LinuxStates() => [LinuxRead($"/sys/class/net/{_t0}/brport/state"), LinuxRead($"/sys/class/net/{_t1}/brport/state")];

    private string[] OurStates()
        => _rt!.Ok("dladm", "show-bridge", "-l", "-p", "-o", "state", "br").Split('\n', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>Our DESROOT ("4096/0:8:20:1:2:3") as Linux writes a bridge id ("1000.000820010203").</summary>
    private static string AsLinuxId(string desroot)
    {
        int slash = desroot.IndexOf('/');
        ushort prio = ushort.Parse(desroot[..slash], CultureInfo.InvariantCulture);
        Assert.That(MacAddress.TryParse(desroot[(slash + 1)..], out var mac), Is.True, desroot);
        return $"{prio:x4}.{mac.Value:x12}";
    }

    /// <summary>Polls until neither side has a port listening or learning (bounded).</summary>
    private void WaitConverged()
    {
        var deadline = DateTime.UtcNow + s_converge;
        while (DateTime.UtcNow < deadline)
        {
            if (OurStates().All(s => s is "forwarding" or "blocking") && LinuxStates().All(s => s is "3" or "4")) return;
            Thread.Sleep(500);
        }
        Assert.Fail($"no convergence within {s_converge.TotalSeconds} s: ours {string.Join(',', OurStates())}, Linux {string.Join(',', LinuxStates())}");
    }

    [TestCase(4096, 32768, TestName = "Linux_as_root_our_bridge_blocks_one_of_its_ports")]
    [TestCase(32768, 4096, TestName = "Ours_as_root_the_Linux_bridge_blocks_one_of_its_ports")]
    public void The_two_bridges_agree_on_one_root_and_block_the_loop_once(int linuxPriority, int ourPriority)
    {
        LinuxBridge(linuxPriority);
        OurBridge(ourPriority);
        WaitConverged();
        string ourRoot = AsLinuxId(_rt!.Ok("dladm", "show-bridge", "-p", "-o", "desroot", "br").Trim());
        string linuxRoot = LinuxRead("/sys/class/net/br0/bridge/root_id");
        string linuxSelf = LinuxRead("/sys/class/net/br0/bridge/bridge_id");
        string ourSelf = AsLinuxId(_rt.Ok("dladm", "show-bridge", "-p", "-o", "address", "br").Trim());
        var ours = OurStates();
        var linux = LinuxStates();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ourRoot, Is.EqualTo(linuxRoot), "one root");
            Assert.That(linuxRoot, Is.EqualTo(linuxPriority < ourPriority ? linuxSelf : ourSelf));
            Assert.That(ours.Count(s => s == "blocking") + linux.Count(s => s == "4"), Is.EqualTo(1), $"ours {string.Join(',', ours)}, Linux {string.Join(',', linux)}");
            if (linuxPriority < ourPriority) Assert.That(ours, Does.Contain("blocking"));
            else Assert.That(linux, Does.Contain("4"));
        }
    }
}
