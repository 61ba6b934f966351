namespace SmartOS.Vnic.Tests;

/// <summary>The MAC layer's one message table: every code has a text, and the texts are libdladm's.</summary>
public class DlStatusTests
{
    [Test]
    public void Every_code_has_its_own_message()
    {
        var seen = new Dictionary<string, DladmStatus>();
        foreach (var code in Enum.GetValues<DladmStatus>())
        {
            string text = DlStatusText.Of(code);
            Assert.That(text, Is.Not.Empty.And.Not.EqualTo("<unknown error>"), code.ToString());
            Assert.That(seen.TryAdd(text, code), Is.True, $"{code} has the same text as {(seen.TryGetValue(text, out var other) ? other : code)}");
        }
    }

    // dladm_status2str, usr/src/lib/libdladm/common/libdladm.c (illumos-joyent, SmartOS's illumos).
    [TestCase(DladmStatus.Ok, "ok")]
    [TestCase(DladmStatus.BadArg, "invalid argument")]
    [TestCase(DladmStatus.NotFound, "object not found")]
    [TestCase(DladmStatus.Exist, "object already exists")]
    [TestCase(DladmStatus.LinkInval, "invalid link")]
    [TestCase(DladmStatus.PropRdOnly, "read-only property")]
    [TestCase(DladmStatus.LinkBusy, "link busy")]
    [TestCase(DladmStatus.VidInval, "invalid VLAN identifier")]
    [TestCase(DladmStatus.InvalidMacAddrInUse, "MAC address is already in use")]
    [TestCase(DladmStatus.MacFactorySlotAllUsed, "all factory MAC address slots are in use")]
    [TestCase(DladmStatus.InvalidMacPrefix, "Invalid MAC address prefix value")]
    [TestCase(DladmStatus.FlowIncompatible, "flow(s) with incompatible attributes exists")]
    [TestCase(DladmStatus.MinMaxBw, "minimum value for maxbw is 1200K")]
    [TestCase(DladmStatus.PortNoProto, "local or remote port requires transport")]
    [TestCase(DladmStatus.PersistOnTemp, "can't create persistent object on top of temporary object")]
    public void Texts_are_dladm_status2str_wording(DladmStatus code, string text)
    {
        Assert.That(new DlStatus(code).Message, Is.EqualTo(text));
    }

    [Test]
    public void The_default_status_is_ok()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(default(DlStatus).IsOk, Is.True);
            Assert.That(DlStatus.Ok.Code, Is.EqualTo(DladmStatus.Ok));
            Assert.That(((DlStatus)DladmStatus.LinkBusy).IsOk, Is.False);
        }
    }
}
