namespace SmartOS.Kernel.Tests;

public class ConfigStoreTests
{
    private string _root = "";

    [SetUp]
    public void MakeRoot()
    {
        _root = Path.Combine(Path.GetTempPath(), "smartos-kernel-tests-" + Guid.NewGuid().ToString("N"));
    }

    [TearDown]
    public void RemoveRoot()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    [Test]
    public void File_store_writes_under_etc_and_reads_back()
    {
        var store = new FileConfigStore(_root);

        store.Write("datalink.conf", "first");
        store.Write("datalink.conf", "second, longer than the first");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(store.Read("datalink.conf"), Is.EqualTo("second, longer than the first"));
            Assert.That(File.ReadAllText(Path.Combine(_root, "etc", "datalink.conf")), Is.EqualTo("second, longer than the first"));
            Assert.That(new FileConfigStore(_root).Read("datalink.conf"), Is.EqualTo("second, longer than the first"));
        }
    }

    [Test]
    public void File_store_write_leaves_no_temporary_file()
    {
        var store = new FileConfigStore(_root);

        store.Write("datalink.conf", "x");
        store.Write("flowadm.conf", "y");

        Assert.That(Directory.GetFiles(Path.Combine(_root, "etc")).Select(Path.GetFileName), Is.EquivalentTo(new[] { "datalink.conf", "flowadm.conf" }));
    }

    [Test]
    public void File_store_replaces_a_stale_temporary_file_left_by_a_crash()
    {
        var store = new FileConfigStore(_root);
        store.Write("datalink.conf", "good");
        File.WriteAllText(Path.Combine(_root, "etc", "datalink.conf.tmp"), "half writ");

        Assert.That(store.Read("datalink.conf"), Is.EqualTo("good"), "a leftover temporary file is never read");
        store.Write("datalink.conf", "better");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(store.Read("datalink.conf"), Is.EqualTo("better"));
            Assert.That(File.Exists(Path.Combine(_root, "etc", "datalink.conf.tmp")), Is.False);
        }
    }

    [Test]
    public void File_store_reads_missing_as_null_and_deletes()
    {
        var store = new FileConfigStore(_root);
        Assert.That(store.Read("nothing.conf"), Is.Null);

        store.Write("a.conf", "1");
        store.Delete("a.conf");
        store.Delete("a.conf");

        Assert.That(store.Read("a.conf"), Is.Null);
    }

    [TestCase("../escape")]
    [TestCase("sub/file")]
    [TestCase(".hidden")]
    [TestCase("back\\slash")]
    public void File_store_refuses_names_that_leave_etc(string name)
    {
        var store = new FileConfigStore(_root);

        Assert.That(() => store.Write(name, "x"), Throws.ArgumentException);
    }

    [Test]
    public void File_store_keeps_utf8_text()
    {
        var store = new FileConfigStore(_root);
        store.Write("zone.conf", "café ✓");

        Assert.That(store.Read("zone.conf"), Is.EqualTo("café ✓"));
    }

    [Test]
    public void Memory_store_reads_writes_and_deletes()
    {
        var store = new MemoryConfigStore();

        Assert.That(store.Read("datalink.conf"), Is.Null);
        store.Write("datalink.conf", "a");
        store.Write("datalink.conf", "b");
        Assert.That(store.Read("datalink.conf"), Is.EqualTo("b"));
        store.Delete("datalink.conf");
        Assert.That(store.Read("datalink.conf"), Is.Null);
    }
}
