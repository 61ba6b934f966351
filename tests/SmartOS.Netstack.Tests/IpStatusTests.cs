namespace SmartOS.Netstack.Tests;

/// <summary>The IP configuration API's one message table: every code has a text, and the texts are
/// libipadm's.</summary>
public class IpStatusTests
{
    [Test]
    public void Every_code_has_a_message()
    {
        foreach (var code in Enum.GetValues<IpadmStatus>())
            Assert.That(IpStatusText.Of(code), Is.Not.Empty.And.Not.EqualTo("<unknown error>"), code.ToString());
    }

    // The ipadm_errors table in usr/src/lib/libipadm/common/libipadm.c (illumos-joyent).
    [TestCase(IpadmStatus.Success, "Operation succeeded")]
    [TestCase(IpadmStatus.BadAddr, "Invalid address")]
    [TestCase(IpadmStatus.IfExists, "Interface already exists")]
    [TestCase(IpadmStatus.AddrObjExists, "Address object already exists")]
    [TestCase(IpadmStatus.Enxio, "Interface does not exist")]
    [TestCase(IpadmStatus.InvalidArg, "Invalid argument provided")]
    [TestCase(IpadmStatus.DladmFailure, "Datalink does not exist")]
    [TestCase(IpadmStatus.DadFound, "Duplicate address detected")]
    [TestCase(IpadmStatus.AddrInUse, "Address already in use")]
    [TestCase(IpadmStatus.DhcpIpcTimeout, "Communication with dhcpagent timed out")]
    [TestCase(IpadmStatus.GzPerm, "Operation not permitted on from-gz interface")]
    public void Texts_are_ipadm_status2str_wording(IpadmStatus code, string text)
    {
        Assert.That(new IpStatus(code).Message, Is.EqualTo(text));
    }

    [Test]
    public void The_default_status_is_success()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(default(IpStatus).IsOk, Is.True);
            Assert.That(((IpStatus)IpadmStatus.IfInUse).IsOk, Is.False);
        }
    }
}
