using System.Security.Cryptography;
using SmartOS.Zones;

namespace SmartOS.Integration.Tests;

/// <summary>zlogin into an lx zone copies bytes both ways (tools/Dispatcher.cs rule 5): every byte
/// value through a Linux `cat` in the zone's namespace comes back unchanged. Run only as root with
/// /dev/net/tun and ip(8).</summary>
[NonParallelizable]
public class LxZoneStreamTests
{
    private RealTimeHost? _rt;
    private string _lx = "";

    [SetUp]
    public void BootZone()
    {
        string? missing = LinuxNet.MissingPrerequisite("cat");
        if (missing != null) Assert.Ignore(missing);
        _lx = "lx" + LinuxNet.Suffix();
        _rt = new RealTimeHost(nics: 0);
        _rt.Ok("dladm", "create-etherstub", "-t", "stub0");
        _rt.Ok("dladm", "create-vnic", "-t", "-l", "stub0", "lx0");
        _rt.Ok("zonecfg", "-z", _lx, "create; set zonepath=/zones/lx; set brand=lx; add net; set physical=lx0; set allowed-address=198.18.2.2/24; end");
        _rt.Ok("zoneadm", "-z", _lx, "install");
        _rt.Ok("zoneadm", "-z", _lx, "boot");
    }

    [TearDown]
    public void Teardown()
    {
        try
        {
            _rt?.Dispose();
        }
        finally
        {
            if (_lx.Length > 0) LinuxNet.DeleteNamespace(LxZoneNetwork.NamespaceOf(_lx));
        }
    }

    [Test]
    public void Random_bytes_pass_unchanged_through_a_linux_cat_in_an_lx_zone()
    {
        var sent = new byte[4 << 20];
        new Random(21).NextBytes(sent);
        for (int i = 0; i < 256; i++) sent[i] = (byte)i;
        var r = _rt!.ShBytes(sent, "zlogin", _lx, "cat");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Code, Is.Zero, r.Err);
            Assert.That(r.Out, Has.Length.EqualTo(sent.Length));
            Assert.That(Convert.ToHexString(SHA256.HashData(r.Out)), Is.EqualTo(Convert.ToHexString(SHA256.HashData(sent))));
        }
    }

    [Test]
    public void A_program_that_stops_reading_early_ends_zlogin_with_its_output()
    {
        var r = _rt!.ShBytes(new byte[1 << 20], "zlogin", _lx, "head", "-c", "10");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Code, Is.Zero, r.Err);
            Assert.That(r.Out, Is.EqualTo(new byte[10]));
        }
    }
}
