namespace SmartOS.Kernel.Tests;

/// <summary>RootLock.cs: flock locks belong to the open file description, so two holders in one
/// process exclude each other as two processes would.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public class RootLockTests
{
    private const UnixFileMode PrivateDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode PrivateFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private string _root = "";

    [SetUp]
    public void MakeRoot() => _root = Path.Combine(Path.GetTempPath(), "smartos-lock-tests-" + Guid.NewGuid().ToString("N"));

    [TearDown]
    public void RemoveRoot()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    [Test]
    public void A_second_holder_is_refused_while_the_first_holds_the_lock()
    {
        using var first = RootLock.TryTake(_root);
        using var second = RootLock.TryTake(_root);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(first, Is.Not.Null);
            Assert.That(second, Is.Null);
        }
    }

    [Test]
    public void The_lock_is_free_again_once_its_holder_lets_go()
    {
        RootLock.TryTake(_root)!.Dispose();
        using var again = RootLock.TryTake(_root);

        Assert.That(again, Is.Not.Null);
    }

    [Test]
    public void A_new_root_its_lock_and_its_configuration_are_private_to_the_owner()
    {
        using var held = RootLock.TryTake(_root);
        new FileConfigStore(_root).Write("datalink.conf", "[]");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(File.GetUnixFileMode(_root), Is.EqualTo(PrivateDirectory));
            Assert.That(File.GetUnixFileMode(Path.Combine(_root, "etc")), Is.EqualTo(PrivateDirectory));
            Assert.That(File.GetUnixFileMode(Path.Combine(_root, RootLock.FileName)), Is.EqualTo(PrivateFile));
            Assert.That(File.GetUnixFileMode(Path.Combine(_root, "etc", "datalink.conf")), Is.EqualTo(PrivateFile));
        }
    }

    [Test]
    public void Making_an_old_root_private_fixes_every_directory_and_file()
    {
        new FileConfigStore(_root).Write("zones.conf", "[]");
        const UnixFileMode Open = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        const UnixFileMode OpenDirectory = Open | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
        File.SetUnixFileMode(_root, OpenDirectory);
        File.SetUnixFileMode(Path.Combine(_root, "etc"), OpenDirectory);
        File.SetUnixFileMode(Path.Combine(_root, "etc", "zones.conf"), Open);

        RootFiles.MakePrivate(_root);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(File.GetUnixFileMode(_root), Is.EqualTo(PrivateDirectory));
            Assert.That(File.GetUnixFileMode(Path.Combine(_root, "etc")), Is.EqualTo(PrivateDirectory));
            Assert.That(File.GetUnixFileMode(Path.Combine(_root, "etc", "zones.conf")), Is.EqualTo(PrivateFile));
        }
    }
}
