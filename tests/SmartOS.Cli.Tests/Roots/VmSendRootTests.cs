namespace SmartOS.Cli.Tests.Roots;

/// <summary>vmadm send on one root directory (one-shot commands) and vmadm receive on another; the
/// received VM boots on the second root's daemon and answers ping there.</summary>
[NonParallelizable]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public class VmSendRootTests
{
    private const string Uuid = "55555555-5555-4555-8555-555555555555";
    private string _dir = "";

    [SetUp]
    public void MakeDir() => _dir = Directory.CreateTempSubdirectory("smartos-vmsend-roots-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(_dir, recursive: true);

    /// <summary>A root with nic tag external and a zones pool on a disk file inside it.</summary>
    private static SmartosProcesses Root(string dir)
    {
        Directory.CreateDirectory(dir);
        var smartos = new SmartosProcesses(dir);
        using (var fs = new FileStream(Path.Combine(dir, "d0"), FileMode.CreateNew)) fs.SetLength(128L << 20);
        Ok(smartos.Run(null, "nictagadm", "add", "external", "e1000g0"));
        Ok(smartos.Run(null, "zpool", "create", "zones", "d0"));
        return smartos;
    }

    private static string Ok((int Code, string Out, string Err) r)
    {
        Assert.That(r.Code, Is.Zero, r.Err);
        return r.Out;
    }

    [Test]
    public void A_vm_sent_from_one_root_is_received_on_another_and_answers_ping_there()
    {
        string stream = Path.Combine(_dir, "vm.stream");
        using (var a = Root(Path.Combine(_dir, "a")))
        {
            Ok(a.Run($$"""{"uuid": "{{Uuid}}", "brand": "joyent", "autoboot": false, "nics": [{"nic_tag": "external", "ips": ["10.0.0.10/24"]}]}""",
                "vmadm", "create"));
            Ok(a.Run(null, "zfs", "create", "-p", $"zones/{Uuid}/data"));
            Ok(a.Run("moved\n", "dd", $"of=/zones/{Uuid}/data/note"));
            Ok(a.Run(null, "vmadm", "send", Uuid, "-f", stream));
        }
        using var b = Root(Path.Combine(_dir, "b"));
        Assert.That(b.Run(null, "vmadm", "receive", "-f", stream).Err, Is.EqualTo($"Successfully received VM {Uuid}\n"));
        var daemon = b.StartDaemon();
        try
        {
            SmartosProcesses.WaitListening(daemon);
            Ok(b.Run(null, "vmadm", "start", Uuid));
            Assert.That(Ok(b.Run(null, "cat", $"/zones/{Uuid}/data/note")), Is.EqualTo("moved\n"));
            Ok(b.Run(null, "ipadm", "create-if", "-t", "e1000g0"));
            Ok(b.Run(null, "ipadm", "create-addr", "-t", "-T", "static", "-a", "10.0.0.1/24", "e1000g0/v4"));
            Assert.That(Ok(b.Run(null, "ping", "10.0.0.10")), Is.EqualTo("10.0.0.10 is alive\n"));
        }
        finally
        {
            SmartosProcesses.Stop(daemon);
        }
    }
}
