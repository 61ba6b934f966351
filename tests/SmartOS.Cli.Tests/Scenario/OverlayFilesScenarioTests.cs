using SmartOS.Cli.Scenario;

namespace SmartOS.Cli.Tests.Scenario;

/// <summary>
/// The files search plugin through the commands (dladm create-overlay -s files -p
/// files/config=FILE): two hosts in virtual time carry a tenant network by one mapping file, ARP is
/// answered from it, a MAC it lacks is a counted miss, and a bad file is refused naming the entry.
/// </summary>
public class OverlayFilesScenarioTests
{
    private string _dir = "";

    [SetUp]
    public void MakeDir() => _dir = Directory.CreateTempSubdirectory("smartos-ovl-files-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(_dir, recursive: true);

    private (int Code, string Out, string Err) Run(string script)
    {
        var o = new StringWriter { NewLine = "\n" };
        var e = new StringWriter { NewLine = "\n" };
        int code = new ScenarioRunner(o, e, _dir, 1).Run(script, Path.Combine(_dir, "overlay-files.scn"));
        return (code, o.ToString(), e.ToString());
    }

    private string Mapping()
    {
        string path = Path.Combine(_dir, "tenant.json");
        File.WriteAllText(path, """
            {
                "2:0:0:0:1:1": { "ip": "10.0.0.1", "port": 4789, "arp": "192.168.50.1" },
                "2:0:0:0:2:1": { "ip": "10.0.0.2", "port": 4789, "arp": "192.168.50.2" }
            }
            """);
        return path;
    }

    private static string Host(string name, int n, string map) => $"""
        host {name}
        dladm create-vnic -l e1000g0 under0
        ipadm create-if under0
        ipadm create-addr -T static -a 10.0.0.{n}/24 under0/v4
        dladm create-overlay -e vxlan -s files -v 4000 -p vxlan/listen_ip=10.0.0.{n},files/config={map} tenant0
        dladm create-vnic -l tenant0 -m 2:0:0:0:{n}:1 tnt0
        ipadm create-if tnt0
        ipadm create-addr -T static -a 192.168.50.{n}/24 tnt0/v4
        """;

    [Test]
    public void Two_hosts_carry_a_tenant_network_by_the_mapping_file()
    {
        string map = Mapping();
        var (code, o, e) = Run($"""
            host h1 nics=1
            host h2 nics=1
            wire h1/e1000g0 h2/e1000g0
            {Host("h1", 1, map)}
            dladm show-overlay -p -o link,property,value tenant0
            expect ^tenant0:search:files$
            expect ^tenant0:files/config:{map.Replace(".", "\\.")}$
            {Host("h2", 2, map)}
            host h1
            sleep 1s
            ping -s 192.168.50.2 56 3
            expect 3 packets transmitted, 3 packets received, 0% packet loss
            ! ping 192.168.50.3 1
            kstat -p overlay:0:tenant0:/^(encap|proxy_answers|lookup_drop)$/
            expect encap\t[1-9]
            expect proxy_answers\t[1-9]
            expect lookup_drop\t[1-9]
            kstat -p overlay:0:tenant0:lookup_miss
            expect lookup_miss\t0$
            """);
        Assert.That(code, Is.Zero, e + o);
    }

    [Test]
    public void A_bad_mapping_file_is_refused_naming_the_file_and_the_entry()
    {
        string bad = Path.Combine(_dir, "bad.json");
        File.WriteAllText(bad, """{ "2:0:0:0:1:1": { "ip": "10.0.0.1", "port": 99999 } }""");
        var (code, o, e) = Run($"""
            host h1 nics=1
            ! dladm create-overlay -e vxlan -s files -v 4000 -p vxlan/listen_ip=10.0.0.1,files/config={bad} tenant0
            expect ^dladm: overlay creation failed: files/config: {bad.Replace(".", "\\.")}: entry "2:0:0:0:1:1": "port" must be a number from 1 to 65535: 99999$
            ! dladm create-overlay -e vxlan -s files -v 4000 -p vxlan/listen_ip=10.0.0.1,files/config={_dir}/absent.json tenant0
            expect No such file or directory
            ! dladm create-overlay -e vxlan -s files -v 4000 -p vxlan/listen_ip=10.0.0.1 tenant0
            expect overlay creation failed: missing required property files/config
            dladm show-link
            expect-not tenant0
            """);
        Assert.That(code, Is.Zero, e + o);
    }
}
