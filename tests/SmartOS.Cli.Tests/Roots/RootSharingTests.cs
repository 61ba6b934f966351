using System.Diagnostics;
using System.Globalization;

namespace SmartOS.Cli.Tests.Roots;

/// <summary>One root directory shared by one-shot commands, a daemon and other users
/// (kernel/RootLock.cs, tools/RootAccess.cs).</summary>
[NonParallelizable]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public class RootSharingTests
{
    private string _root = "";
    private SmartosProcesses _smartos = null!;

    [SetUp]
    public void MakeRoot()
    {
        _root = Directory.CreateTempSubdirectory("smartos-root-").FullName;
        _smartos = new SmartosProcesses(_root);
    }

    [TearDown]
    public void Cleanup()
    {
        _smartos.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    private string[] Links()
    {
        var show = _smartos.Run(null, "dladm", "show-link", "-p", "-o", "link");
        Assert.That(show.Code, Is.Zero, show.Err);
        return show.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    [Test]
    public void Parallel_one_shot_writers_are_each_persisted_or_clearly_refused()
    {
        const int Writers = 12;
        var started = Enumerable.Range(0, Writers)
            .Select(i => _smartos.Command(null, "dladm", "create-vnic", "-l", "e1000g0", "v" + i.ToString(CultureInfo.InvariantCulture)))
            .ToList();
        var results = started.Select(SmartosProcesses.Finish).ToList();
        var links = Links();

        using (Assert.EnterMultipleScope())
        {
            for (int i = 0; i < Writers; i++)
            {
                var (code, _, err) = results[i];
                string name = "v" + i.ToString(CultureInfo.InvariantCulture);
                if (code == 0) Assert.That(links, Does.Contain(name), $"{name} was acknowledged but not persisted");
                else Assert.That(err, Does.StartWith($"smartos: the host on {_root} is busy"), $"{name} failed unclearly");
            }
            Assert.That(results.Count(r => r.Code == 0), Is.EqualTo(Writers), "a one-shot holds the lock well under the wait bound");
        }
    }

    private static readonly Dictionary<string, string> s_waitOneSecond = new() { ["SMARTOS_LOCK_WAIT"] = "1" };

    [Test]
    public void A_one_shot_that_cannot_get_the_lock_in_time_is_refused_and_changes_nothing()
    {
        using (var held = SmartOS.Kernel.RootLock.TryTake(_root))
        {
            Assert.That(held, Is.Not.Null);
            var refused = SmartosProcesses.Finish(_smartos.Start(null, ["--root", _root, "dladm", "create-vnic", "-l", "e1000g0", "late0"], environment: s_waitOneSecond));
            using (Assert.EnterMultipleScope())
            {
                Assert.That(refused.Code, Is.EqualTo(1));
                Assert.That(refused.Err, Is.EqualTo($"smartos: the host on {_root} is busy: another command held its lock for 1s; try again\n"));
            }
        }
        Assert.That(Links(), Does.Not.Contain("late0"));
    }

    [Test]
    public void A_daemon_that_cannot_get_the_lock_in_time_is_refused()
    {
        using var held = SmartOS.Kernel.RootLock.TryTake(_root);
        var refused = SmartosProcesses.Finish(_smartos.Start(null, ["boot", "--root", _root], environment: s_waitOneSecond));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(refused.Code, Is.EqualTo(1));
            Assert.That(refused.Err, Is.EqualTo($"smartos boot: the host on {_root} is busy: another command held its lock for 1s; try again\n"));
            Assert.That(File.Exists(Path.Combine(_root, "smartos.sock")), Is.False);
        }
    }

    [TestCase("soon")]
    [TestCase("3601")]
    [TestCase("-1")]
    public void A_bad_lock_wait_is_refused(string value)
    {
        var env = new Dictionary<string, string> { ["SMARTOS_LOCK_WAIT"] = value };
        var refused = SmartosProcesses.Finish(_smartos.Start(null, ["--root", _root, "dladm", "show-link"], environment: env));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(refused.Code, Is.EqualTo(2));
            Assert.That(refused.Err, Is.EqualTo($"smartos: SMARTOS_LOCK_WAIT: bad value '{value}' (whole seconds, 0 to 3600)\n"));
        }
    }

    [Test]
    public void One_shot_commands_racing_a_daemons_start_go_live_through_it_or_are_refused()
    {
        var daemon = _smartos.StartDaemon();
        var racers = Enumerable.Range(0, 4).Select(i =>
        {
            Thread.Sleep(150 * i);
            return _smartos.Command(null, "dladm", "create-vnic", "-l", "e1000g0", "r" + i.ToString(CultureInfo.InvariantCulture));
        }).ToList();
        SmartosProcesses.WaitListening(daemon);
        var results = racers.Select(SmartosProcesses.Finish).ToList();
        var live = Links();
        SmartosProcesses.Stop(daemon);
        var persisted = Links();

        using (Assert.EnterMultipleScope())
        {
            for (int i = 0; i < results.Count; i++)
            {
                var (code, _, err) = results[i];
                string name = "r" + i.ToString(CultureInfo.InvariantCulture);
                if (code != 0)
                {
                    Assert.That(err, Does.StartWith($"smartos: the host on {_root} is busy"), $"{name} failed unclearly");
                    continue;
                }
                Assert.That(live, Does.Contain(name), $"{name} was acknowledged but is not live on the daemon");
                Assert.That(persisted, Does.Contain(name), $"{name} was acknowledged but not persisted");
            }
        }
    }

    [Test]
    public void A_root_that_is_not_a_directory_is_reported_not_thrown()
    {
        string file = Path.Combine(_root, "plain-file");
        File.WriteAllText(file, "");
        var oneShot = _smartos.Start(null, ["--root", file, "dladm", "show-link"]);
        var (code, stdout, stderr) = SmartosProcesses.Finish(oneShot);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.EqualTo(1));
            Assert.That(stderr, Is.EqualTo($"smartos: {file}: not a directory\n"));
            Assert.That(stdout, Is.Empty);
        }
    }

    [Test]
    public void A_root_and_its_files_are_private_and_old_roots_are_made_so()
    {
        Assert.That(_smartos.Run(null, "dladm", "create-vnic", "-l", "e1000g0", "v0").Code, Is.Zero);
        const UnixFileMode Open = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        File.SetUnixFileMode(_root, Open | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        foreach (string f in Directory.GetFiles(_root, "*", SearchOption.AllDirectories)) File.SetUnixFileMode(f, Open);

        Assert.That(Links(), Does.Contain("v0"));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(File.GetUnixFileMode(_root), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute));
            Assert.That(File.GetUnixFileMode(Path.Combine(_root, "etc")), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute));
            foreach (string f in Directory.GetFiles(_root, "*", SearchOption.AllDirectories))
                Assert.That(File.GetUnixFileMode(f), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite), f);
        }
    }

    [Test]
    public void Another_user_is_refused_rather_than_given_a_one_shot_host_of_the_root()
    {
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root") Assert.Ignore("needs root to run a child as another uid");
        if (!File.Exists("/usr/bin/setpriv")) Assert.Ignore("needs setpriv(1)");
        if (!Readable(AppContext.BaseDirectory)) Assert.Ignore("the test's binaries are not readable by other users");
        Assert.That(_smartos.Run(null, "dladm", "create-vnic", "-l", "e1000g0", "secret0").Code, Is.Zero);
        // A root left readable by an older version: the owner check refuses it all the same.
        File.SetUnixFileMode(_root, (UnixFileMode)0b111_101_101);
        foreach (string f in Directory.GetFiles(_root, "*", SearchOption.AllDirectories)) File.SetUnixFileMode(f, (UnixFileMode)0b110_100_100);

        var other = SmartosProcesses.Finish(_smartos.Start(null, ["--root", _root, "dladm", "show-link"], uid: 65534));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(other.Code, Is.EqualTo(1));
            Assert.That(other.Err, Is.EqualTo($"smartos: the host on {_root} belongs to uid 0: permission denied\n"));
            Assert.That(other.Out, Does.Not.Contain("secret0"));
        }
    }

    [Test]
    public void A_daemon_tells_a_peer_with_another_uid_that_it_is_refused()
    {
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root") Assert.Ignore("needs root to run a daemon as another uid");
        if (!File.Exists("/usr/bin/setpriv")) Assert.Ignore("needs setpriv(1)");
        if (!Readable(AppContext.BaseDirectory)) Assert.Ignore("the test's binaries are not readable by other users");
        using (var chown = Process.Start("chown", ["65534:65534", _root])!)
            Assert.That(chown.WaitForExit(SmartosProcesses.Wait), Is.True);
        var daemon = _smartos.Start(null, ["boot", "--root", _root], uid: 65534);
        SmartosProcesses.WaitListening(daemon);

        // Root may open any root directory, so it reaches the socket; the daemon serves only its own uid.
        var refused = _smartos.Run(null, "zonename");
        SmartosProcesses.Stop(daemon);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(refused.Code, Is.EqualTo(1));
            Assert.That(refused.Err, Is.EqualTo($"smartos: the host on {_root} belongs to uid 65534: permission denied\n"));
            Assert.That(refused.Out, Is.Empty);
        }
    }

    /// <summary>Whether uid 65534 could run the test's copy of smartos.dll (every directory above it
    /// searchable by others).</summary>
    private static bool Readable(string dir)
    {
        for (var d = new DirectoryInfo(dir); d != null; d = d.Parent)
            if ((d.UnixFileMode & UnixFileMode.OtherExecute) == 0) return false;
        return true;
    }

    [Test]
    public void Fresh_roots_draw_different_random_mac_addresses_and_one_root_new_uuids()
    {
        string other = Directory.CreateTempSubdirectory("smartos-root-").FullName;
        try
        {
            using var second = new SmartosProcesses(other);
            Assert.That(_smartos.Run(null, "dladm", "create-vnic", "-l", "e1000g0", "-m", "random", "v0").Code, Is.Zero);
            Assert.That(second.Run(null, "dladm", "create-vnic", "-l", "e1000g0", "-m", "random", "v0").Code, Is.Zero);
            string here = _smartos.Run(null, "dladm", "show-vnic", "-p", "-o", "macaddress").Out;
            string there = second.Run(null, "dladm", "show-vnic", "-p", "-o", "macaddress").Out;
            var first = _smartos.Run("""{ "alias": "a", "autoboot": false }""", "vmadm", "create");
            var again = _smartos.Run("""{ "alias": "b", "autoboot": false }""", "vmadm", "create");

            using (Assert.EnterMultipleScope())
            {
                Assert.That(here, Is.Not.EqualTo(there));
                Assert.That(first.Err, Does.StartWith("Successfully created VM "));
                Assert.That(again.Err, Does.StartWith("Successfully created VM "));
                Assert.That(again.Err, Is.Not.EqualTo(first.Err));
            }
        }
        finally
        {
            Directory.Delete(other, recursive: true);
        }
    }

    [Test]
    public void Each_boot_of_a_daemon_draws_fresh_random_addresses_from_the_system()
    {
        string[] macs = new string[2];
        for (int boot = 0; boot < 2; boot++)
        {
            var daemon = _smartos.StartDaemon();
            SmartosProcesses.WaitListening(daemon);
            var created = _smartos.Run(null, "dladm", "create-vnic", "-t", "-l", "e1000g0", "-m", "random", "t0");
            Assert.That(created.Code, Is.Zero, created.Err);
            macs[boot] = _smartos.Run(null, "dladm", "show-vnic", "-p", "-o", "macaddress").Out;
            SmartosProcesses.Stop(daemon);
        }

        Assert.That(macs[1], Is.Not.EqualTo(macs[0]), "a temporary VNIC is gone after a reboot, so the same draw would give the same address");
    }
}
