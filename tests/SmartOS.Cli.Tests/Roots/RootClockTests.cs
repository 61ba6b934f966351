using System.Text.Json.Nodes;

namespace SmartOS.Cli.Tests.Roots;

/// <summary>The date a host on a root tells (Host.cs rule 7): a one-shot command's front end gives it
/// the system clock, so the timestamps vmadm keeps in the root are real dates, not the virtual
/// clock's 1970.</summary>
[NonParallelizable]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public class RootClockTests
{
    [Test]
    public void A_one_shot_vmadm_create_on_a_root_stamps_the_system_clocks_date()
    {
        string root = Directory.CreateTempSubdirectory("smartos-root-").FullName;
        try
        {
            using var smartos = new SmartosProcesses(root);
            var create = smartos.Run("""{"brand": "joyent", "autoboot": false}""", "vmadm", "create");
            Assert.That(create.Code, Is.Zero, create.Err);
            string uuid = create.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1].Split(' ')[^1];
            var get = smartos.Run(null, "vmadm", "get", uuid);
            Assert.That(get.Code, Is.Zero, get.Err);
            var stamp = DateTime.Parse((string)JsonNode.Parse(get.Out)!["create_timestamp"]!, System.Globalization.CultureInfo.InvariantCulture,
                System.Globalization.DateTimeStyles.AdjustToUniversal);
            // Not a measure of time: the year tells whether the system clock or the virtual one (1970) stamped it.
            Assert.That(stamp.Year, Is.GreaterThanOrEqualTo(2024));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
