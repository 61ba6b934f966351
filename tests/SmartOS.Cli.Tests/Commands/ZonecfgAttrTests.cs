using System.Text.Json.Nodes;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>
/// zonecfg's attr resource (add, select, remove; name, type, value) with illumos zonecfg's checks and
/// words, and a VM's attrs that vmadm owns, which stay what vmadm get shows (issue 22).
/// </summary>
public class ZonecfgAttrTests
{
    private static CliHost PlainZone()
    {
        var h = new CliHost();
        h.Ok("zonecfg", "-z", "web", "create; set zonepath=/zones/web");
        return h;
    }

    private static string Vm(CliHost h, string payload = """{"brand": "joyent", "autoboot": false, "alias": "web"}""")
    {
        var r = h.WithStdin(payload, "vmadm", "create");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        return r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1].Split(' ')[^1];
    }

    private static JsonNode Get(CliHost h, string uuid) => JsonNode.Parse(h.Ok("vmadm", "get", uuid))!;

    [Test]
    public void Add_attr_is_kept_shown_by_info_and_exported()
    {
        var h = PlainZone();
        h.Ok("zonecfg", "-z", "web", "add attr; set name=role; set type=string; set value=\"db\"; end");
        h.Ok("zonecfg", "-z", "web", "add attr; set name=weight; set type=uint; set value=7; end");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok("zonecfg", "-z", "web", "info", "attr", "name=role"), Is.EqualTo("attr:\n\tname: role\n\ttype: string\n\tvalue: db\n"));
            Assert.That(h.Ok("zonecfg", "-z", "web", "export"), Does.EndWith(
                "add attr\nset name=role\nset type=string\nset value=\"db\"\nend\nadd attr\nset name=weight\nset type=uint\nset value=\"7\"\nend\n"));
        }
    }

    [Test]
    public void An_exported_zone_with_attrs_is_recreated_as_it_was()
    {
        var h = PlainZone();
        h.Ok("zonecfg", "-z", "web", "add attr; set name=role; set type=boolean; set value=true; end");
        string export = h.Ok("zonecfg", "-z", "web", "export");
        Assert.That(h.WithStdin(export, "zonecfg", "-z", "copy").ExitCode, Is.Zero);
        Assert.That(h.Ok("zonecfg", "-z", "copy", "info", "attr"), Is.EqualTo(h.Ok("zonecfg", "-z", "web", "info", "attr")));
    }

    [TestCase("add attr; set type=string; set value=x; end", "name not specified")]
    [TestCase("add attr; set name=a; set value=x; end", "type not specified")]
    [TestCase("add attr; set name=a; set type=string; end", "value not specified")]
    [TestCase("add attr; set name=-a; set type=string; set value=x; end", "Invalid attr name -a: must start with an alpha-numeric character.")]
    [TestCase("add attr; set name=a_b; set type=string; set value=x; end", "Invalid attr name a_b: can only contain alpha-numeric characters, plus '-' and '.'.")]
    [TestCase("add attr; set name=a; set type=float; set value=1.5; end", "invalid attr type 'float'")]
    [TestCase("add attr; set name=a; set type=boolean; set value=yes; end", "invalid attr value for type=boolean")]
    [TestCase("add attr; set name=a; set type=int; set value=12x; end", "invalid attr value for type=int")]
    [TestCase("add attr; set name=a; set type=uint; set value=-1; end", "invalid attr value for type=uint")]
    [TestCase("add attr; set name=a; set colour=red", "colour: unknown property for attr")]
    [TestCase("remove attr name=nothing", "remove attr: No such resource with that id")]
    [TestCase("select attr name=nothing", "select attr: No such resource with that id")]
    public void A_bad_attr_is_refused_in_zonecfgs_words_and_nothing_changes(string script, string message)
    {
        var h = PlainZone();
        h.Ok("zonecfg", "-z", "web", "add attr; set name=keep; set type=string; set value=yes; end");
        var r = h.Run("zonecfg", "-z", "web", script);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.EqualTo(1));
            Assert.That(r.Stderr, Does.Contain(message));
            Assert.That(h.Ok("zonecfg", "-z", "web", "info", "attr"), Is.EqualTo("attr:\n\tname: keep\n\ttype: string\n\tvalue: yes\n"));
        }
    }

    [Test]
    public void A_second_attr_of_the_same_name_is_refused()
    {
        var h = PlainZone();
        h.Ok("zonecfg", "-z", "web", "add attr; set name=role; set type=string; set value=db; end");
        var r = h.Run("zonecfg", "-z", "web", "add attr; set name=role; set type=string; set value=web; end");
        Assert.That(r.Stderr, Does.Contain("An attr resource with the name 'role' already exists."));
    }

    [Test]
    public void Select_changes_an_attr_and_remove_takes_it_away()
    {
        var h = PlainZone();
        h.Ok("zonecfg", "-z", "web", "add attr; set name=role; set type=string; set value=db; end");
        h.Ok("zonecfg", "-z", "web", "select attr name=role; set value=web; end");
        string changed = h.Ok("zonecfg", "-z", "web", "info", "attr");
        h.Ok("zonecfg", "-z", "web", "remove attr name=role");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(changed, Is.EqualTo("attr:\n\tname: role\n\ttype: string\n\tvalue: web\n"));
            Assert.That(h.Ok("zonecfg", "-z", "web", "info", "attr"), Is.EqualTo("No such attr resource.\n"));
        }
    }

    [Test]
    public void Remove_with_F_takes_a_missing_attr_in_silence()
    {
        var h = PlainZone();
        string before = h.Ok("zonecfg", "-z", "web", "export");
        var r = h.Run("zonecfg", "-z", "web", "remove -F attr name=failed");
        Assert.That((r.ExitCode, r.Stdout, r.Stderr), Is.EqualTo((0, "", "")), "silent, and successful");
        Assert.That(h.Ok("zonecfg", "-z", "web", "export"), Is.EqualTo(before), "and nothing changed");
    }

    [Test]
    public void A_vms_own_attrs_changed_by_zonecfg_are_what_vmadm_get_shows()
    {
        var h = new CliHost();
        string uuid = Vm(h);
        // "db" in base64, as VM.js stores the alias.
        h.Ok("zonecfg", "-z", uuid, "select attr name=alias; set value=ZGI=; end");
        h.Ok("zonecfg", "-z", uuid, "select attr name=owner-uuid; set value=930896af-bf8c-48d4-885c-6573a94b1853; end");
        h.Ok("zonecfg", "-z", uuid, "add attr; set name=package-name; set type=string; set value=small; end");
        h.Ok("zonecfg", "-z", uuid, "remove attr name=billing-id");
        var vm = Get(h, uuid);
        using (Assert.EnterMultipleScope())
        {
            Assert.That((string?)vm["alias"], Is.EqualTo("db"));
            Assert.That((string?)vm["owner_uuid"], Is.EqualTo("930896af-bf8c-48d4-885c-6573a94b1853"));
            Assert.That((string?)vm["package_name"], Is.EqualTo("small"));
            Assert.That(vm["billing_id"], Is.Null);
        }
    }

    [Test]
    public void Vmadm_update_of_an_owned_property_is_what_zonecfg_info_shows()
    {
        var h = new CliHost();
        string uuid = Vm(h);
        h.Ok("vmadm", "update", uuid, "package_version=2.0");
        Assert.That(h.Ok("zonecfg", "-z", uuid, "info", "attr", "name=package-version"), Is.EqualTo("attr:\n\tname: package-version\n\ttype: string\n\tvalue: 2.0\n"));
    }

    [TestCase("select attr name=alias; set value=not*base64; end", "attr alias: 'not*base64' is not base64")]
    [TestCase("select attr name=owner-uuid; set type=int; set value=5; end", "attr owner-uuid: vmadm keeps it as type string")]
    public void A_vms_own_attr_that_vmadm_could_not_read_back_is_refused(string script, string message)
    {
        var h = new CliHost();
        string uuid = Vm(h);
        var r = h.Run("zonecfg", "-z", uuid, script);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Stderr, Does.Contain(message));
            Assert.That((string?)Get(h, uuid)["alias"], Is.EqualTo("web"));
        }
    }

    [Test]
    public void Removing_create_timestamp_takes_it_out_of_vmadm_get()
    {
        var h = new CliHost();
        string uuid = Vm(h);
        h.Ok("zonecfg", "-z", uuid, "remove attr name=create-timestamp");
        Assert.That(Get(h, uuid)["create_timestamp"], Is.Null);
    }

    [Test]
    public void The_failed_attr_makes_vmadm_show_the_vm_failed()
    {
        var h = new CliHost();
        string uuid = Vm(h);
        h.Ok("zonecfg", "-z", uuid, "add attr; set name=failed; set type=string; set value=provisioning; end");
        using (Assert.EnterMultipleScope())
        {
            Assert.That((string?)Get(h, uuid)["state"], Is.EqualTo("failed"));
            Assert.That(h.Ok("vmadm", "list", "-H", "-o", "state", "uuid=" + uuid), Is.EqualTo("failed\n"));
        }
    }

    [Test]
    public void A_zonecfg_commit_moves_a_vms_last_modified_on()
    {
        var h = new CliHost();
        string uuid = Vm(h);
        h.World.Scheduler.RunFor(SmartOS.Kernel.Time.Second * 9);
        h.Ok("zonecfg", "-z", uuid, "add attr; set name=note; set type=string; set value=x; end");
        Assert.That((string?)Get(h, uuid)["last_modified"], Is.EqualTo("1970-01-01T00:00:09.000Z"));
    }
}
