using System.Text.Json.Nodes;
using SmartOS.Zones;
using SmartOS.Zones.Images;

namespace SmartOS.Cli.Tests.Images;

/// <summary>
/// For tests that build an image's dataset by hand (zones/UUID and its @final, with zfs commands):
/// the record imgadm install leaves beside it (ImageStore's glossary, "installed"), so vmadm and
/// zoneadm find an installed image of that type. Tests of imgadm itself install through imgadm.
/// </summary>
internal static class ImageRecord
{
    public static void Register(Host host, string uuid, string type, string os = "smartos")
    {
        var manifest = new JsonObject
        {
            ["v"] = 2, ["uuid"] = uuid, ["name"] = "test-" + type, ["version"] = "1.0.0", ["type"] = type, ["os"] = os,
            ["state"] = "active", ["disabled"] = false, ["public"] = false,
        };
        var record = new JsonObject { ["zpool"] = "zones", ["manifest"] = manifest };
        host.Store.Write(ImageStore.RecordName(uuid), record.ToJsonString() + "\n");
        Assert.That(host.Images.Find(uuid)?.Type, Is.EqualTo(type), "the image store reads the record");
    }
}
