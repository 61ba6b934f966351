using SmartOS.Kernel;
using SmartOS.Storage;
using SmartOS.Zones;

namespace SmartOS.Cli.Tests.Images;

/// <summary>
/// A host on a temporary root directory with a `zones` pool on a file in it, for imgadm's tests:
/// commands run with the root as working directory, and Reboot makes a new host on the same root.
/// </summary>
internal sealed class ImgadmHost : IDisposable
{
    public const string Base = "8a1f4d2e-3b5c-4e6f-9a7b-0c1d2e3f4a5b";
    public const string Zvol = "4c2b1a0f-9e8d-4c7b-a6f5-e4d3c2b1a098";

    public ImgadmHost(bool pool = true)
    {
        Root = Directory.CreateTempSubdirectory("smartos-imgadm-").FullName;
        Boot();
        if (!pool) return;
        using (var fs = new FileStream(Path.Combine(Root, "d0"), FileMode.CreateNew)) fs.SetLength(128L << 20);
        Ok("zpool create zones d0");
    }

    public string Root { get; }
    public World World { get; private set; } = null!;
    public Host Host { get; private set; } = null!;
    public Pool Zones => Host.Pools.Find("zones")!;

    /// <summary>A new world and host on the same root: what a reboot keeps is what the store and pool hold.</summary>
    public void Boot()
    {
        foreach (var pool in Host?.Pools.All.ToList() ?? []) pool.Dispose();
        World = new World(1);
        Host = World.AddHost("h1", 1, new FileConfigStore(Root));
    }

    public CommandResult Run(string[] argv, string? stdin = null) => Dispatcher.Run(World, Host, argv, stdin, workingDirectory: Root);

    public CommandResult Line(string line, string? stdin = null) => Run(line.Split(' ', StringSplitOptions.RemoveEmptyEntries), stdin);

    public string Ok(string line, string? stdin = null)
    {
        var r = Line(line, stdin);
        Assert.That(r.ExitCode, Is.Zero, $"{line} failed: {r.Stderr}");
        return r.Stdout;
    }

    public CommandResult Fails(string line, string? stdin = null)
    {
        var r = Line(line, stdin);
        Assert.That(r.ExitCode, Is.Not.Zero, $"{line} should have failed: {r.Stdout}");
        return r;
    }

    /// <summary>The repository's examples/images directory.</summary>
    public static string Examples => Path.Combine(Scenario.ScenarioRunnerTests.RepoRoot(), "examples", "images");

    /// <summary>Copies an example image's manifest and file into the root; returns the manifest's path.</summary>
    public string CopyExample(string name)
    {
        File.Copy(Path.Combine(Examples, name + ".imgmanifest"), Path.Combine(Root, name + ".imgmanifest"), overwrite: true);
        File.Copy(Path.Combine(Examples, name + ".zfs.gz"), Path.Combine(Root, name + ".zfs.gz"), overwrite: true);
        return Path.Combine(Root, name + ".imgmanifest");
    }

    public void InstallBase() => Ok($"imgadm install -m {CopyExample("base-1.0.0")} -f {Root}/base-1.0.0.zfs.gz");

    public void InstallZvol() => Ok($"imgadm install -m {CopyExample("bhyve-pattern-1.0.0")} -f {Root}/bhyve-pattern-1.0.0.zfs.gz");

    /// <summary>Every dataset and snapshot of the zones pool.</summary>
    public string Datasets() => Ok("zfs list -H -o name -t all");

    /// <summary>The names of the host's configuration files.</summary>
    public string[] ConfigFiles() => [.. Directory.GetFiles(Path.Combine(Root, "etc")).Select(Path.GetFileName).Order(StringComparer.Ordinal)!];

    public void Dispose()
    {
        foreach (var pool in Host.Pools.All.ToList()) pool.Dispose();
        Directory.Delete(Root, recursive: true);
    }
}
