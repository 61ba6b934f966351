namespace SmartOS.Kernel;

/// <summary>
/// Where a host keeps its persistent configuration (ARCHITECTURE.md, "Persistent state"): named
/// documents, each replaced atomically so a killed process never leaves a half-written one.
/// </summary>
public interface IConfigStore
{
    string? Read(string name);
    void Write(string name, string content);
    void Delete(string name);
}

/// <summary>A store that may take a document as the means to render it, rendered when first read
/// (ConfigFile.cs rule 6): only a store that nothing outside the process reads.</summary>
public interface IDeferredConfigStore : IConfigStore
{
    void WriteDeferred(string name, Func<string> render);
}

/// <summary>Configuration kept in memory: a host without a root directory (most tests, scenarios).
/// A deferred write replaces the document with its renderer; the first read renders it.</summary>
public sealed class MemoryConfigStore : IDeferredConfigStore
{
    private readonly Dictionary<string, string> _docs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Func<string>> _deferred = new(StringComparer.Ordinal);

    /// <summary>Documents rendered so far (deferred ones when read, the others when written): what
    /// the zone-scale tests count.</summary>
    public long Renders { get; private set; }

    public string? Read(string name)
    {
        if (_deferred.Remove(name, out var render))
        {
            Renders++;
            _docs[name] = render();
        }
        return _docs.TryGetValue(name, out var s) ? s : null;
    }

    public void Write(string name, string content)
    {
        Renders++;
        _deferred.Remove(name);
        _docs[name] = content;
    }

    public void WriteDeferred(string name, Func<string> render)
    {
        _docs.Remove(name);
        _deferred[name] = render;
    }

    public void Delete(string name)
    {
        _deferred.Remove(name);
        _docs.Remove(name);
    }
}

/// <summary>Configuration files under a host's root directory: write a temporary file, fsync, rename.
/// The directories are created 0700 and the files 0600 (RootFiles); whoever writes holds the root's
/// lock (RootLock.cs rule 1).</summary>
public sealed class FileConfigStore : IConfigStore
{
    public FileConfigStore(string root)
    {
        Root = Path.GetFullPath(root);
        RootFiles.CreatePrivateDirectory(Root);
        RootFiles.CreatePrivateDirectory(Path.Combine(Root, "etc"));
    }

    public string Root { get; }

    private string PathOf(string name)
    {
        if (name.Contains('/') || name.Contains('\\') || name.StartsWith('.')) throw new ArgumentException("bad config name", nameof(name));
        return Path.Combine(Root, "etc", name);
    }

    public string? Read(string name)
    {
        string path = PathOf(name);
        // A directory in the file's place is a fault to report (ConfigFile.cs rule 3), not a missing file.
        if (Directory.Exists(path)) throw new IOException($"{name} is a directory");
        return File.Exists(path) ? File.ReadAllText(path) : null;
    }

    public void Write(string name, string content)
    {
        string path = PathOf(name);
        string tmp = path + ".tmp";
        using (var fs = new FileStream(tmp, RootFiles.PrivateFileOptions(FileMode.Create, FileAccess.Write)))
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes(content);
            fs.Write(bytes);
            fs.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
    }

    public void Delete(string name)
    {
        string path = PathOf(name);
        if (File.Exists(path)) File.Delete(path);
    }
}
