using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace SmartOS.Kernel.Tests;

/// <summary>ConfigFile.cs: records read one by one, positions, kept records, refused writes.</summary>
public class ConfigFileTests
{
    public sealed class Rec
    {
        public string Name { get; set; } = "";
        public int Size { get; set; }
    }

    private static readonly JsonTypeInfo<Rec> s_info = (JsonTypeInfo<Rec>)new JsonSerializerOptions(JsonSerializerOptions.Default)
    {
        TypeInfoResolver = new DefaultJsonTypeInfoResolver(),
    }.GetTypeInfo(typeof(Rec));

    private static (List<ConfigRecord<Rec>> Records, List<string> Problems, ConfigFile<Rec> File, MemoryConfigStore Store) Load(string text)
    {
        var store = new MemoryConfigStore();
        store.Write("t.conf", text);
        var file = new ConfigFile<Rec>("t.conf", s_info);
        var problems = new List<string>();
        return (file.Load(store, problems), problems, file, store);
    }

    [Test]
    public void Each_record_is_read_on_its_own_with_its_index_and_line()
    {
        var (records, problems, _, _) = Load("""
            [
              {"Name": "a", "Size": 1},
              {"Name": "b",
               "Size": "big"},
              5,
              null,
              {"Name": "c", "Size": 3}
            ]
            """);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(records.Select(r => (r.Value.Name, r.Index, r.Line)), Is.EqualTo(new[] { ("a", 1, 2), ("c", 5, 7) }));
            Assert.That(problems, Is.EqualTo(new[]
            {
                "t.conf: record 2 (line 4): $.Size: The JSON value could not be converted to System.Int32.",
                "t.conf: record 3 (line 5): not an object",
                "t.conf: record 4 (line 6): empty record (null)",
            }));
        }
    }

    [Test]
    public void A_save_writes_the_good_records_then_the_kept_ones_verbatim()
    {
        var (records, _, file, store) = Load("""[{"Name": "a"}, {"Name": "b", "Size": "big"}, null]""");

        file.Save(store, [records[0].Value, new Rec { Name = "new", Size = 2 }]);
        var again = new ConfigFile<Rec>("t.conf", s_info);
        var problems = new List<string>();
        var next = again.Load(store, problems);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(next.Select(r => r.Value.Name), Is.EqualTo(new[] { "a", "new" }));
            Assert.That(problems, Has.Count.EqualTo(2));
            Assert.That(store.Read("t.conf"), Does.Contain("""{"Name": "b", "Size": "big"}"""));
            Assert.That(again.KeptCount, Is.EqualTo(2));
        }
    }

    [Test]
    public void A_rejected_record_is_kept_and_named()
    {
        var (records, problems, file, store) = Load("""[{"Name": "a"}, {"Name": "b"}]""");

        file.Reject(records[1], "b: no such thing", problems);
        file.Save(store, [records[0].Value]);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(problems, Is.EqualTo(new[] { "t.conf: record 2 (line 1): b: no such thing" }));
            Assert.That(store.Read("t.conf"), Does.Contain("""{"Name": "b"}"""));
        }
    }

    [Test]
    public void A_syntax_error_keeps_the_records_before_it_and_refuses_every_save()
    {
        const string text = "[\n{\"Name\": \"a\"},\n{\"Name\": \"b\" \"Size\": 1},\n{\"Name\": \"c\"}\n]";
        var (records, problems, file, store) = Load(text);

        var e = Assert.Throws<IOException>(() => file.Save(store, []));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(records.Select(r => r.Value.Name), Is.EqualTo(new[] { "a" }));
            Assert.That(problems.Single(), Does.StartWith("t.conf: line 3: "));
            Assert.That(e!.Message, Does.StartWith("cannot update t.conf: it could not be read at boot (line 3: "));
            Assert.That(store.Read("t.conf"), Is.EqualTo(text));
        }
    }

    [TestCase("null")]
    [TestCase("{\"Name\": \"a\"}")]
    [TestCase("")]
    [TestCase("[] []")]
    public void A_file_that_is_not_one_array_is_unreadable(string text)
    {
        var (records, problems, file, _) = Load(text);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(records, Is.Empty);
            Assert.That(problems.Single(), Does.StartWith("t.conf: line 1: "));
            Assert.That(file.Unreadable, Is.Not.Null);
        }
    }

    [Test]
    public void A_directory_in_a_file_store_is_a_fault_not_a_missing_file()
    {
        string root = Directory.CreateTempSubdirectory("smartos-configfile-").FullName;
        try
        {
            var store = new FileConfigStore(root);
            Directory.CreateDirectory(Path.Combine(root, "etc", "t.conf"));
            var file = new ConfigFile<Rec>("t.conf", s_info);
            var problems = new List<string>();

            file.Load(store, problems);

            Assert.That(problems, Is.EqualTo(new[] { "t.conf: t.conf is a directory" }));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Test]
    public void Echo_cuts_long_text()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ConfigText.Echo(new string('x', 5_000_000)), Has.Length.EqualTo(ConfigText.EchoLimit + 3));
            Assert.That(ConfigText.Echo("short"), Is.EqualTo("short"));
        }
    }
    [Test]
    public void A_deferred_save_renders_when_read_and_reads_as_an_immediate_one_would()
    {
        var (records, _, file, store) = Load("""[{"Name": "a"}, {"Name": "b", "Size": "big"}]""");
        var live = new List<Rec> { records[0].Value };
        long renders = store.Renders;
        file.SaveDeferred(store, () => live);
        live.Add(new Rec { Name = "later", Size = 2 });
        Assert.That(store.Renders, Is.EqualTo(renders), "deferred, nothing rendered yet");

        string? text = store.Read("t.conf");
        var immediate = new MemoryConfigStore();
        file.Save(immediate, live);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(store.Renders, Is.EqualTo(renders + 1));
            Assert.That(text, Is.EqualTo(immediate.Read("t.conf")), "the records as they stood when read, then the kept one");
            Assert.That(store.Read("t.conf"), Is.SameAs(text), "read twice, rendered once");
        }
    }

    [Test]
    public void A_write_or_delete_replaces_a_deferred_document()
    {
        var store = new MemoryConfigStore();
        store.WriteDeferred("t.conf", () => "deferred");
        store.Write("t.conf", "written");
        Assert.That(store.Read("t.conf"), Is.EqualTo("written"));
        store.WriteDeferred("t.conf", () => "deferred");
        store.Delete("t.conf");
        Assert.That(store.Read("t.conf"), Is.Null);
    }

    [Test]
    public void A_deferred_save_of_an_unreadable_file_is_refused_at_once()
    {
        var (_, _, file, store) = Load("[\n{\"Name\": \"a\"} {\"Name\": \"b\"}\n]");
        Assert.Throws<IOException>(() => file.SaveDeferred(store, () => []));
    }
}
