using SmartOS.Zones;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>The zone table's one message table (zonecfg_strerror) and zoneadm's state messages, and
/// the nic tags' table.</summary>
public class ZoneStatusTests
{
    [Test]
    public void Every_zone_code_has_a_message()
    {
        foreach (var code in Enum.GetValues<ZoneError>())
            Assert.That(ZoneStatusText.Of(code), Is.Not.Empty.And.Not.EqualTo("Unknown error"), code.ToString());
    }

    // zonecfg_strerror, usr/src/lib/libzonecfg/common/libzonecfg.c.
    [TestCase(ZoneError.Ok, "OK")]
    [TestCase(ZoneError.NoZone, "No such zone configured")]
    [TestCase(ZoneError.BadZoneState, "Zone state is invalid for the requested operation")]
    [TestCase(ZoneError.NameInUse, "Zone name already in use")]
    [TestCase(ZoneError.BogusZoneName, "Bogus zone name")]
    [TestCase(ZoneError.BrandError, "Brand-specific error")]
    [TestCase(ZoneError.InvalidProperty, "Specified property is invalid")]
    public void Texts_are_zonecfg_strerror_wording(ZoneError code, string text)
    {
        Assert.That(new ZoneStatus(code).Message, Is.EqualTo(text));
    }

    // zoneadm.c sanity_check's wording, filled in from the status's subject and detail.
    [Test]
    public void State_refusals_read_as_zoneadm_words_them()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ZoneStatus.State(ZoneStateCheck.NotInstalled, "boot").Message, Is.EqualTo("must be installed before boot."));
            Assert.That(ZoneStatus.State(ZoneStateCheck.InvalidForState, "install", "running").Message, Is.EqualTo("install operation is invalid for running zones."));
            Assert.That(ZoneStatus.State(ZoneStateCheck.AlreadyInstalled).Message, Is.EqualTo("is already installed."));
            Assert.That(ZoneStatus.State(ZoneStateCheck.NotRunning).Code, Is.EqualTo(ZoneError.BadZoneState));
        }
    }

    [Test]
    public void Every_state_check_has_a_message_of_its_own()
    {
        var seen = new HashSet<string>();
        foreach (var check in Enum.GetValues<ZoneStateCheck>())
        {
            if (check == ZoneStateCheck.None) continue;
            string text = ZoneStatus.State(check, "s", "d").Message;
            Assert.That(seen.Add(text), Is.True, $"{check}: {text}");
            Assert.That(text, Is.Not.EqualTo(ZoneStatusText.Of(ZoneError.BadZoneState)), check.ToString());
        }
    }

    [Test]
    public void Every_nic_tag_code_has_a_message()
    {
        foreach (var code in Enum.GetValues<NicTagError>())
            Assert.That(new NicTagStatus(code, "t").Message, Is.Not.Empty.And.Not.EqualTo("unknown error"), code.ToString());
    }

    [Test]
    public void An_etherstub_the_mac_layer_refuses_is_named_with_its_dladm_text()
    {
        var s = new NicTagStatus(NicTagError.EtherstubFailed, "stub1", Vnic.DladmStatus.Exist);
        Assert.That(s.Message, Is.EqualTo("Could not create etherstub 'stub1': object already exists"));
    }

    [Test]
    public void The_default_status_is_ok()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(default(ZoneStatus).IsOk, Is.True);
            Assert.That(default(NicTagStatus).IsOk, Is.True);
        }
    }
}
