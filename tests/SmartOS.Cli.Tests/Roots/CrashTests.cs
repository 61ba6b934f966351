using System.Diagnostics;
using System.Globalization;

namespace SmartOS.Cli.Tests.Roots;

/// <summary>
/// kill -9 at seeded random moments while one-shot commands and a daemon change one root, then
/// boot the root: every file loads, every acknowledged change is there, and nothing is there that
/// no command asked for (issue 20's crash-and-corrupt test, sized for CI: ten kills).
/// </summary>
[NonParallelizable]
public class CrashTests
{
    private const int Kills = 10;
    private const int MaxRounds = 30;

    [Test]
    public void Kill_9_during_changes_loses_nothing_acknowledged_and_leaves_every_file_loadable()
    {
        string root = Directory.CreateTempSubdirectory("smartos-crash-").FullName;
        var random = new Random(2020);
        var acknowledged = new List<string>();
        var attempted = new HashSet<string>(StringComparer.Ordinal);
        int kills = 0;
        try
        {
            using var smartos = new SmartosProcesses(root);
            for (int round = 0; kills < Kills && round < MaxRounds; round++)
            {
                string r = round.ToString(CultureInfo.InvariantCulture);
                bool daemonRound = round % 3 == 2;
                Process? daemon = null;
                if (daemonRound)
                {
                    daemon = smartos.StartDaemon();
                    SmartosProcesses.WaitListening(daemon);
                }
                string[] names = ["a" + r, "vm" + r, "b" + r];
                foreach (string n in names) attempted.Add(n);
                var changes = new List<Process>
                {
                    smartos.Command(null, "dladm", "create-vnic", "-l", "e1000g0", "-m", "random", names[0]),
                    smartos.Command($$"""{ "alias": "{{names[1]}}", "autoboot": false }""", "vmadm", "create"),
                    smartos.Command(null, "dladm", "create-vnic", "-l", "e1000g0", names[2]),
                };
                Thread.Sleep(random.Next(daemonRound ? 300 : 900));
                var victim = daemon ?? changes[random.Next(changes.Count)];
                bool killed = false;
                if (!victim.HasExited)
                {
                    victim.Kill();
                    killed = true;
                    kills++;
                }
                if (daemon != null) Assert.That(daemon.WaitForExit(SmartosProcesses.Wait), Is.True);
                for (int i = 0; i < changes.Count; i++)
                {
                    if (changes[i] == victim && killed) continue;
                    var (code, _, err) = SmartosProcesses.Finish(changes[i]);
                    if (code == 0) acknowledged.Add(names[i]);
                    else Assert.That(err, Does.StartWith("smartos: lost the connection").Or.StartWith("smartos: the host closed the connection"),
                        $"round {r}: {names[i]} failed: {err}");
                }
            }

            var links = smartos.Run(null, "dladm", "show-vnic", "-p", "-o", "link,over");
            var vms = smartos.Run(null, "vmadm", "list", "-p", "-o", "alias");
            var linkNames = links.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(':')[0]).ToList();
            var aliases = vms.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
            var present = linkNames.Concat(aliases).ToList();
            using (Assert.EnterMultipleScope())
            {
                Assert.That(kills, Is.EqualTo(Kills), "not enough kills landed while a process ran");
                Assert.That(acknowledged, Is.Not.Empty, "some changes were acknowledged between the kills");
                Assert.That(links.Err + vms.Err, Is.Empty, "every configuration file loads");
                Assert.That(links.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.All.EndsWith(":e1000g0"));
                Assert.That(present, Is.SubsetOf(attempted), "nothing appears that no command asked for");
                Assert.That(present, Is.Unique, "no change is applied twice");
                Assert.That(acknowledged, Is.SubsetOf(present), "every acknowledged change is kept");
            }
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
