/*
 * The image store: what imgadm(8) installs, lists and deletes on a host, and where it finds images
 * to import.
 *
 * Glossary
 *   image      a manifest (IMGAPI manifest v2: uuid, name, version, type, os, files[0] with the file's
 *              size, sha1 and compression, ...) and a file: the zfs send stream of a filesystem (types
 *              zone-dataset, lx-dataset: its root/ is a zone's root) or of a volume (zvol), plain or
 *              compressed (gzip, bzip2, xz).
 *   installed  the dataset zones/UUID with the snapshot zones/UUID@final, received from the file,
 *              and the manifest's record in the host's configuration store, imgadm-zones-UUID.json
 *              ({"zpool", "manifest", "source"}, as SmartOS keeps /var/imgadm/images/zones-UUID.json).
 *              The dataset decides (as imgadm's listImages does): a record whose dataset is gone is
 *              no image, and a UUID-named dataset with @final and no record is a VM's, not an image.
 *   clone      a dataset whose origin is zones/UUID@final: a VM's root or disk, or a child image.
 *   source     a local directory laid out as an image server serves images: DIR/images/UUID/manifest
 *              and DIR/images/UUID/file (IMGAPI's GET /images/:uuid and /images/:uuid/file), or a
 *              directory of NAME-VERSION.imgmanifest and NAME-VERSION.zfs[.gz|.bz2|.xz] pairs (what
 *              imgadm create writes). The list is kept in imgadm.conf ({"sources": [{"url", "type"}]}).
 *
 * Rules
 *   1. Nothing half-made: install checks the manifest (ImageManifest.Validate), the file's size and
 *      sha1 against files[0], and the stream's kind against the type before it changes anything;
 *      the stream is received whole or not at all (storage/Dsl.Send.cs rule 1, ZvolStream rule 2);
 *      a failure after the dataset exists (its record cannot be written) destroys the dataset again.
 *   2. Nothing reaches the network: an http(s) source is refused when added, saying so.
 *   3. Delete refuses while the image has clones (ImageHasDependentClones); vacuum deletes the
 *      images without clones, repeatedly, so a chain of unused incremental images goes as a whole.
 *   4. Create works on a stopped VM's dataset (zones/UUID; a bhyve or kvm VM's zones/UUID-disk0):
 *      it takes zones/UUID@final (an existing @final is renamed out of the way first, as imgadm
 *      does), sends it to the file, compresses it, writes the manifest with files[0] and destroys
 *      that @final again. Times come from the host's clock and UUIDs from its identity source, so
 *      a scenario makes the same image bytes on every run.
 *   5. Reads of image files are bounded (MaxFile): the stream is held in memory whole, as the
 *      dataset layer receives it.
 *
 * An incremental image (manifest "origin", imgadm create -i) is the stream of a VM's changes against
 * its origin image's @final (its dataset is a clone of it); installing it clones the origin's @final
 * and applies the changes (storage/Dsl.SendClone.cs), so the new image is a clone of its origin, and
 * the origin cannot be deleted while it is there (rule 3). A zvol image's the same way: the stream of
 * disk0's changes against its origin's @final, installed as a clone of it (storage/Send/ZvolStream.cs).
 *
 * Not done: xz files are read
 * by SharpCompress and written by liblzma (Xz.cs: no managed encoder restores here). requirements.min_platform is not set by
 * create (there is no platform image to name). Docker images and IMGAPI servers over the network
 * are not supported.
 */
using System.Buffers.Binary;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using SmartOS.Kernel;
using SmartOS.Storage;
using SmartOS.Storage.Send;
using SharpCompress.Compressors.BZip2;
using SharpCompress.Compressors.Xz;
using BzMode = SharpCompress.Compressors.CompressionMode;

namespace SmartOS.Zones.Images;

/// <summary>An imgadm error: its code (as imgadm's errors.js names it) and its message.</summary>
public sealed record ImageError(string Code, string Message);

/// <summary>An installed image, as imgadm's getImage returns it: its manifest, pool, source and clones.</summary>
public sealed record ImageInfo(ImageManifest Manifest, string Zpool, string? Source, IReadOnlyList<string> Clones);

/// <summary>A configured image source (imgadm.conf).</summary>
public sealed record ImageSource(string Url, string Type);

/// <summary>The images installed on a host and its image sources (see the theory statement above).</summary>
public sealed class ImageStore
{
    public const string Zpool = "zones";
    public const string SourcesName = "imgadm.conf";
    public const long MaxFile = 1L << 30;

    /// <summary>The compressions imgadm knows (common.VALID_COMPRESSIONS), and those create writes here.</summary>
    public static readonly string[] Compressions = ["none", "bzip2", "gzip", "xz"];

    private readonly Host _host;

    public ImageStore(Host host) => _host = host;

    public static string RecordName(string uuid) => $"imgadm-{Zpool}-{uuid}.json";

    private Pool? ZonesPool => _host.Pools.Find(Zpool);

    // ---- the contract other parts of the host use ----

    /// <summary>The manifest of an installed image (a copy), or null.</summary>
    public ImageManifest? Find(string uuid) => Installed(uuid)?.Manifest;

    /// <summary>
    /// Whether image <paramref name="imageUuid"/> may be a <paramref name="brand"/> VM's root (or, for
    /// bhyve and kvm, a disk): null when it may, else VM.js's reason (validateImage), which vmadm reports
    /// as "Invalid value(s) for: image_uuid": an image not installed, or one of a type the brand does not
    /// take (proptable.js zoneroot_image_types; zvol for a bhyve or kvm disk).
    /// </summary>
    public string? CheckForBrand(string imageUuid, string brand)
    {
        var manifest = Find(imageUuid);
        if (manifest is null) return $"image \"{imageUuid}\" was not found on zpool \"{Zpool}\"";
        string[] types = TypesFor(brand);
        if (Array.IndexOf(types, manifest.Type) >= 0) return null;
        return $"image {imageUuid} is type {manifest.Type}, but must be one of: [{string.Join(",", types.Select(t => "\"" + t + "\""))}]";
    }

    /// <summary>The image types a brand's root (or, for bhyve and kvm, its disks) is made from.</summary>
    public static string[] TypesFor(string brand) => brand switch
    {
        "lx" => ["docker", "lx-dataset"],
        "bhyve" or "kvm" => ["zvol"],
        _ => ["zone-dataset"],
    };

    /// <summary>Whether an installed image has clones (rule 3): then it may not be deleted.</summary>
    public bool HasDependents(string uuid) => ClonesOf(uuid).Count > 0;

    // ---- listing ----

    /// <summary>An installed image, or null (the dataset decides: glossary, "installed").</summary>
    public ImageInfo? Get(string uuid) => Installed(uuid) is ImageInfo info ? info with { Clones = ClonesOf(uuid) } : null;

    /// <summary>An installed image without its clones: what Find and CheckForBrand need, in time that
    /// does not grow with the pool's datasets (vmadm asks at every create).</summary>
    private ImageInfo? Installed(string uuid)
    {
        if (!ImageManifest.UuidPattern().IsMatch(uuid)) return null;
        var pool = ZonesPool;
        if (pool is null || !pool.Datasets.Exists($"{Zpool}/{uuid}@final")) return null;
        return ReadRecord(uuid);
    }

    /// <summary>Every installed image, in UUID order.</summary>
    public IReadOnlyList<ImageInfo> List()
    {
        var images = new List<ImageInfo>();
        var pool = ZonesPool;
        if (pool is null || !pool.Datasets.List(Zpool, 1, DatasetKinds.Filesystem | DatasetKinds.Volume, out var names).IsOk) return images;
        foreach (string name in names)
            if (name.Length > Zpool.Length + 1 && Get(name[(Zpool.Length + 1)..]) is ImageInfo info) images.Add(info);
        images.Sort((a, b) => string.CompareOrdinal(a.Manifest.Uuid, b.Manifest.Uuid));
        return images;
    }

    /// <summary>The datasets cloned from zones/UUID@final, in name order.</summary>
    public IReadOnlyList<string> ClonesOf(string uuid)
    {
        var clones = new List<string>();
        var pool = ZonesPool;
        if (pool is null || !pool.Datasets.List(Zpool, -1, DatasetKinds.Filesystem | DatasetKinds.Volume, out var names).IsOk) return clones;
        string final = $"{Zpool}/{uuid}@final";
        foreach (string name in names)
            if (pool.Datasets.Get(name, "origin", out var origin).IsOk && origin.Value == final) clones.Add(name);
        return clones;
    }

    private ImageInfo? ReadRecord(string uuid)
    {
        string? text = ConfigText.Read(_host.Store, RecordName(uuid), out _);
        if (text is null) return null;
        try
        {
            if (JsonNode.Parse(text) is not JsonObject o || o["manifest"] is not JsonObject m) return null;
            var manifest = ImageManifest.From((JsonObject)m.DeepClone());
            if (manifest.Uuid != uuid) return null;
            string? source = o["source"] is JsonValue s && s.TryGetValue(out string? url) ? url : null;
            return new ImageInfo(manifest, Zpool, source, []);
        }
        catch (JsonException) { return null; }
    }

    private void WriteRecord(ImageManifest manifest, string? source)
    {
        var record = new JsonObject { ["zpool"] = Zpool, ["manifest"] = manifest.Json.DeepClone() };
        if (source is not null) record["source"] = source;
        _host.Store.Write(RecordName(manifest.Uuid), record.ToJsonString(ImageManifest.Pretty) + "\n");
    }

    // ---- install ----

    /// <summary>
    /// imgadm install: the manifest checked, the file checked against it, the stream received as
    /// zones/UUID@final, the record written (rule 1). Null on success; an already installed UUID is
    /// success too, said on <paramref name="log"/> as imgadm says it (then <paramref name="installed"/> is false).
    /// </summary>
    public ImageError? Install(ImageManifest manifest, string filePath, string? source, Action<string> log, out bool installed)
    {
        installed = false;
        string? invalid = manifest.Validate();
        if (invalid is not null) return new ImageError("ManifestValidation", invalid);
        string uuid = manifest.Uuid;
        if (Get(uuid) is ImageInfo have)
        {
            log($"Image {uuid} ({have.Manifest.Name} {have.Manifest.Version}) is already installed, skipping");
            return null;
        }
        var pool = ZonesPool;
        if (pool is null) return NoPool();
        byte[] file;
        try
        {
            var info = new FileInfo(filePath);
            if (info.Length > MaxFile) return new ImageError("NotSupported", $"image file {filePath} is larger than {MaxFile >> 20} MiB: not supported here");
            file = File.ReadAllBytes(filePath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new ImageError("FileSystem", $"cannot read image file \"{filePath}\": {e.Message}");
        }
        if (manifest.FileSize is long size && size != file.LongLength)
            return new ImageError("DownloadError", $"image file size error: manifest says {size} bytes, {filePath} is {file.LongLength} bytes");
        if (manifest.FileSha1 is string sha1)
        {
            string actual = Convert.ToHexStringLower(SHA1.HashData(file));
            if (!string.Equals(sha1, actual, StringComparison.Ordinal))
                return new ImageError("DownloadError", $"image file checksum (sha1) error: manifest says \"{sha1}\", {filePath} is \"{actual}\"");
        }
        if (manifest.Origin is string origin && Get(origin) is null)
            return new ImageError("OriginNotInstalled", $"origin image \"{origin}\" was not found on zpool \"{Zpool}\"");
        var stream = Uncompress(file, filePath, out var uncompressError);
        if (stream is null) return uncompressError;
        bool volume = ZvolStream.IsVolumeStream(stream);
        if (volume != (manifest.Type == "zvol"))
            return new ImageError("InvalidManifest", $"manifest is invalid: type is \"{manifest.Type}\" but {filePath} holds the stream of a {(volume ? "volume" : "filesystem")}");
        if (pool.Datasets.Exists($"{Zpool}/{uuid}"))
            return new ImageError("FileSystem", $"cannot install image {uuid}: dataset {Zpool}/{uuid} exists and is not an installed image");
        var kept = manifest.Copy();
        if (kept.PublishedAt is null) kept.Json["published_at"] = WallClock.Iso8601(_host.Clock.UnixNanoseconds);
        string? received = volume ? ZvolStream.Receive(pool.Datasets, stream, $"{Zpool}/{uuid}", "final") : ReceiveFilesystem(pool, stream, uuid);
        if (received is not null) return new ImageError("InternalError", $"zfs receive error while installing: {received}");
        try { WriteRecord(kept, source); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Destroy(pool, uuid);
            return new ImageError("InternalError", $"error saving image manifest: {e.Message}");
        }
        installed = true;
        return null;
    }

    private string? ReceiveFilesystem(Pool pool, byte[] stream, string uuid)
    {
        var received = pool.Datasets.Receive(new MemoryStream(stream, writable: false), $"{Zpool}/{uuid}@final", new ReceiveOptions(), out _);
        if (!received.IsOk) return received.Message;
        // As zfs receive does, the new filesystem is mounted (at /zones/UUID) unless it cannot be.
        if (_host.Mounts.Find($"{Zpool}/{uuid}") is null) _host.Mounts.Mount($"{Zpool}/{uuid}");
        return null;
    }

    /// <summary>The stream inside an image file: gzip, bzip2 and xz are recognised by their magic
    /// bytes, as imgadm's magic.js does; anything else is taken as it is.</summary>
    private static byte[]? Uncompress(byte[] file, string path, out ImageError? error)
    {
        error = null;
        string kind = file switch
        {
            [0x1f, 0x8b, ..] => "gzip",
            [(byte)'B', (byte)'Z', (byte)'h', ..] => "bzip2",
            [0xfd, (byte)'7', (byte)'z', (byte)'X', (byte)'Z', 0x00, ..] => "xz",
            _ => "none",
        };
        if (kind == "none") return file;
        try
        {
            using var input = new MemoryStream(file, writable: false);
            using Stream decoder = kind switch
            {
                "gzip" => new GZipStream(input, CompressionMode.Decompress),
                "bzip2" => BZip2Stream.Create(input, BzMode.Decompress, true, false, false),
                _ => new XZStream(input),
            };
            using var output = new MemoryStream();
            var buffer = new byte[1 << 16];
            int n;
            while ((n = decoder.Read(buffer)) > 0)
            {
                if (output.Length + n > MaxFile) throw new InvalidDataException($"more than {MaxFile >> 20} MiB uncompressed");
                output.Write(buffer, 0, n);
            }
            // GZipStream ends quietly at a cut: gzip's trailer (ISIZE, the length mod 2^32) says whether it all came.
            if (kind == "gzip" && BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(file.Length - 4)) != (uint)output.Length)
                throw new InvalidDataException("unexpected end of file");
            return output.ToArray();
        }
        catch (Exception e) when (e is InvalidDataException or IOException or FormatException or InvalidOperationException or ArgumentException
                                      or IndexOutOfRangeException or NotSupportedException)
        {
            error = new ImageError("UncompressionError", $"error uncompressing {kind} image file {path}: {e.Message}");
            return null;
        }
    }

    // ---- delete, vacuum ----

    /// <summary>imgadm delete: refused while the image has clones (rule 3).</summary>
    public ImageError? Delete(string uuid)
    {
        var info = Get(uuid);
        if (info is null) return new ImageError("ImageNotInstalled", $"image \"{uuid}\" was not found on zpool \"{Zpool}\"");
        if (info.Clones.Count > 0)
        {
            string message = $"image \"{uuid}\" has dependent clones: {info.Clones[0]}";
            if (info.Clones.Count > 1) message += $" and {info.Clones.Count - 1} others...";
            return new ImageError("ImageHasDependentClones", message);
        }
        var destroyed = Destroy(ZonesPool!, uuid);
        if (!destroyed.IsOk) return new ImageError("InternalError", destroyed.Message);
        _host.Store.Delete(RecordName(uuid));
        return null;
    }

    private StorageResult Destroy(Pool pool, string uuid)
    {
        string name = $"{Zpool}/{uuid}";
        if (_host.Mounts.Find(name) is not null) _host.Mounts.Unmount(name, force: true);
        return pool.Datasets.Destroy(name, DestroyFlags.Recursive);
    }

    /// <summary>The images vacuum deletes (rule 3): those with no clones, then those whose clones were
    /// only such images, until none is left; in the order they would go.</summary>
    public IReadOnlyList<ImageInfo> Unused()
    {
        var images = List();
        var clones = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var ii in images) clones[$"{Zpool}/{ii.Manifest.Uuid}"] = [.. ii.Clones];
        var byName = images.ToDictionary(ii => $"{Zpool}/{ii.Manifest.Uuid}", StringComparer.Ordinal);
        var doomed = new List<ImageInfo>();
        while (true)
        {
            var round = clones.Where(kv => kv.Value.Count == 0).Select(kv => kv.Key).Order(StringComparer.Ordinal).ToList();
            if (round.Count == 0) break;
            foreach (string ds in round)
            {
                clones.Remove(ds);
                foreach (var set in clones.Values) set.Remove(ds);
                doomed.Add(byName[ds]);
            }
        }
        return doomed;
    }

    // ---- sources ----

    /// <summary>The configured sources, in order (imgadm.conf); none by default (rule 2).</summary>
    public IReadOnlyList<ImageSource> Sources()
    {
        var list = new List<ImageSource>();
        string? text = ConfigText.Read(_host.Store, SourcesName, out _);
        if (text is null) return list;
        try
        {
            if (JsonNode.Parse(text) is JsonObject o && o["sources"] is JsonArray a)
                foreach (var s in a)
                    if (s is JsonObject so && so["url"] is JsonValue u && u.TryGetValue(out string? url))
                        list.Add(new ImageSource(url, so["type"] is JsonValue t && t.TryGetValue(out string? type) ? type : "imgapi"));
        }
        catch (JsonException) { }
        return list;
    }

    /// <summary>
    /// A source as it is kept: an absolute directory (a file:// URL or a path, relative ones from
    /// <paramref name="workingDirectory"/>), or null with why not (rule 2).
    /// </summary>
    public static string? NormalizeSource(string given, string workingDirectory, out string? problem)
    {
        problem = null;
        if (given.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || given.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            problem = $"source \"{given}\": http(s) sources are not supported here: nothing reaches the network; give a local directory";
            return null;
        }
        string path = given.StartsWith("file://", StringComparison.Ordinal) ? given["file://".Length..] : given;
        if (path.Length == 0 || path.Contains("://", StringComparison.Ordinal))
        {
            problem = $"source \"{given}\": not a local directory";
            return null;
        }
        return Path.GetFullPath(Path.IsPathRooted(path) ? path : Path.Combine(workingDirectory, path)).TrimEnd('/') is { Length: > 0 } full ? full : "/";
    }

    /// <summary>Adds a source at the end: false when it is there already.</summary>
    public bool AddSource(string directory, string type)
    {
        var list = Sources().ToList();
        if (list.Any(s => s.Url == directory)) return false;
        list.Add(new ImageSource(directory, type));
        SaveSources(list);
        return true;
    }

    /// <summary>Deletes a source: false when there is none such.</summary>
    public bool DeleteSource(string directory)
    {
        var list = Sources().ToList();
        if (list.RemoveAll(s => s.Url == directory) == 0) return false;
        SaveSources(list);
        return true;
    }

    private void SaveSources(List<ImageSource> list)
    {
        var array = new JsonArray();
        foreach (var s in list) array.Add(new JsonObject { ["url"] = s.Url, ["type"] = s.Type });
        _host.Store.Write(SourcesName, new JsonObject { ["sources"] = array }.ToJsonString(ImageManifest.Pretty) + "\n");
    }

    /// <summary>Where image UUID is in the sources, first source first: its manifest, file and source;
    /// null when no source has it active (imgadm's ActiveImageNotFound). <paramref name="given"/>
    /// replaces the configured sources (import -S).</summary>
    public (ImageManifest Manifest, string File, string Source)? FindInSources(string uuid, bool activeOnly, out ImageError? error,
        IReadOnlyList<ImageSource>? given = null)
    {
        error = null;
        var sources = given ?? Sources();
        if (sources.Count == 0)
        {
            error = new ImageError("NoSources", "imgadm has no configured sources");
            return null;
        }
        foreach (var source in sources)
            foreach (var (manifestPath, filePath) in Candidates(source.Url, uuid))
            {
                string text;
                try { text = File.ReadAllText(manifestPath); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
                var manifest = ImageManifest.Parse(text, out _);
                if (manifest is null || manifest.Uuid != uuid) continue;
                if (activeOnly && (manifest.Json["state"] is JsonValue st && st.TryGetValue(out string? state) && state != "active"
                                   || manifest.Json["disabled"] is JsonValue d && d.TryGetValue(out bool disabled) && disabled)) continue;
                return (manifest, filePath, source.Url);
            }
        error = new ImageError("ActiveImageNotFound", $"an active image \"{uuid}\" was not found in image sources");
        return null;
    }

    /// <summary>The manifest/file pairs of a source directory that may be image UUID (glossary, "source").</summary>
    private static IEnumerable<(string Manifest, string File)> Candidates(string dir, string uuid)
    {
        string served = Path.Combine(dir, "images", uuid);
        if (File.Exists(Path.Combine(served, "manifest"))) yield return (Path.Combine(served, "manifest"), Path.Combine(served, "file"));
        string[] manifests;
        try { manifests = Directory.GetFiles(dir, "*.imgmanifest"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { yield break; }
        Array.Sort(manifests, StringComparer.Ordinal);
        foreach (string m in manifests)
        {
            string prefix = m[..^".imgmanifest".Length];
            foreach (string ext in (string[])[".zfs", ".zfs.gz", ".zfs.bz2", ".zfs.xz"])
                if (File.Exists(prefix + ext)) { yield return (m, prefix + ext); break; }
        }
    }

    // ---- create ----

    /// <summary>What imgadm create is asked for: the VM, the manifest fields given, the compression and
    /// the file path prefix (NAME-VERSION by default, in the command's directory).</summary>
    public sealed record CreateRequest(string VmUuid, JsonObject Fields, string Compression, bool Incremental, string? OutputTemplate, string WorkingDirectory);

    /// <summary>What imgadm create made: the manifest and the two files.</summary>
    public sealed record Created(ImageManifest Manifest, string ManifestPath, string FilePath);

    /// <summary>imgadm create from a stopped VM (rule 4). Progress lines go to <paramref name="log"/>.</summary>
    public ImageError? Create(CreateRequest request, Action<string> log, out Created? created)
    {
        created = null;
        string vmUuid = request.VmUuid;
        var zone = _host.Zones.Find(vmUuid);
        if (zone is null || !zone.IsVm) return new ImageError("VmNotFound", $"vm \"{vmUuid}\" was not found");
        if (zone.State != ZoneState.Installed) return new ImageError("VmNotStopped", $"vm \"{vmUuid}\" is not stopped");
        if (Array.IndexOf(Compressions, request.Compression) < 0)
            return new ImageError("Usage", $"invalid -c,--compression \"{request.Compression}\": must be one of \"{string.Join("\", \"", Compressions)}\"");
        var pool = ZonesPool;
        if (pool is null) return NoPool();
        bool hvm = zone.Config.Brand is "bhyve" or "kvm";
        string dataset = hvm ? $"{Zpool}/{vmUuid}-disk0" : $"{Zpool}/{vmUuid}";
        if (!pool.Datasets.Exists(dataset)) return new ImageError("InternalError", $"vm \"{vmUuid}\" has no dataset {dataset}");
        ImageInfo? origin = OriginOf(pool, dataset, zone.Config.Vm!.ImageUuid);
        if (request.Incremental && origin is null) return new ImageError("VmHasNoOrigin", $"cannot create an incremental image: vm \"{vmUuid}\" has no origin");

        var manifest = BuildManifest(request, zone.Config.Brand, origin, log);
        string? invalid = manifest.Validate();
        if (invalid is not null) return new ImageError("ManifestValidation", invalid);

        string prefix = SavePrefix(request, manifest);
        string filePath = prefix + ".zfs" + request.Compression switch { "gzip" => ".gz", "bzip2" => ".bz2", "xz" => ".xz", _ => "" };
        string manifestPath = prefix + ".imgmanifest";
        string final = dataset + "@final";
        if (pool.Datasets.Exists(final))
        {
            string outOfWay = $"{final}-{_host.Clock.UnixNanoseconds / 1_000_000}";
            log($"Moving existing @final snapshot out of the way to \"{outOfWay}\"");
            var renamed = pool.Datasets.Rename(final, outOfWay);
            if (!renamed.IsOk) return new ImageError("InternalError", renamed.Message);
        }
        log($"Snapshotting to \"{final}\"");
        var snapped = pool.Datasets.Snapshot(final);
        if (!snapped.IsOk) return new ImageError("InternalError", $"error creating final snapshot: {snapped.Message}");
        try
        {
            using var stream = new MemoryStream();
            string? from = request.Incremental ? $"{Zpool}/{origin!.Manifest.Uuid}@final" : null;
            var sent = hvm ? ZvolStream.Send(pool.Datasets, final, from, stream) : pool.Datasets.Send(final, new SendOptions { From = from }, stream);
            if (!sent.IsOk) return new ImageError("InternalError", $"zfs send error: {sent.Message}");
            byte[]? file = Compress(stream.ToArray(), request.Compression, out string? compressError);
            if (file is null) return new ImageError("InternalError", $"error compressing image file: {compressError}");
            manifest.Json["files"] = new JsonArray(new JsonObject
            {
                ["size"] = file.LongLength, ["compression"] = request.Compression, ["sha1"] = Convert.ToHexStringLower(SHA1.HashData(file)),
            });
            log($"Sending image file to \"{filePath}\"");
            File.WriteAllBytes(filePath, file);
            log($"Saving manifest to \"{manifestPath}\"");
            File.WriteAllText(manifestPath, manifest.ToJson());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(filePath);
            return new ImageError("FileSystem", $"error saving image to \"{prefix}\": {e.Message}");
        }
        finally
        {
            pool.Datasets.Destroy(final);
        }
        created = new Created(manifest, manifestPath, filePath);
        return null;
    }

    /// <summary>The installed image a VM's dataset was cloned from (its origin zones/UUID@final), else the
    /// VM's image_uuid if installed.</summary>
    private ImageInfo? OriginOf(Pool pool, string dataset, string? imageUuid)
    {
        if (pool.Datasets.Get(dataset, "origin", out var origin).IsOk && origin.Value.StartsWith(Zpool + "/", StringComparison.Ordinal)
            && origin.Value.EndsWith("@final", StringComparison.Ordinal))
            return Get(origin.Value[(Zpool.Length + 1)..^"@final".Length]);
        return imageUuid is null ? null : Get(imageUuid);
    }

    /// <summary>v and a new uuid, then the fields given, then what the origin image passes on
    /// (imgadm's INHERITED_FIELDS), then requirements.brand for bhyve, kvm and lx VMs.</summary>
    private ImageManifest BuildManifest(CreateRequest request, string brand, ImageInfo? origin, Action<string> log)
    {
        var m = new JsonObject { ["v"] = ImageManifest.Version2, ["uuid"] = VmModel.NewUuid(_host) };
        foreach (var (key, value) in request.Fields) m[key] = value?.DeepClone();
        bool incremental = request.Incremental && origin is not null;
        if (origin is not null)
        {
            var om = origin.Manifest;
            log($"Inheriting from origin image {om.Uuid} ({om.Name} {om.Version})");
            foreach (string field in (string[])["type", "os", "requirements", "users", "billing_tags", "traits", "generate_passwords",
                         "inherited_directories", "nic_driver", "disk_driver", "cpu_type", "image_size"])
                if (!m.ContainsKey(field) && om.Json[field] is JsonNode value && value is not JsonArray { Count: 0 }) m[field] = value.DeepClone();
        }
        if (brand is "bhyve" or "kvm" or "lx" && !(request.Fields["requirements"] is JsonObject r && r.ContainsKey("brand")))
        {
            if (m["requirements"] is not JsonObject req) m["requirements"] = req = new JsonObject();
            req["brand"] = brand;
        }
        if (incremental) m["origin"] = origin!.Manifest.Uuid;
        var manifest = ImageManifest.From(m);
        log("Manifest:\n" + string.Join("\n", manifest.ToJson().Split('\n').Select(l => "    " + l)));
        return manifest;
    }

    private static string SavePrefix(CreateRequest request, ImageManifest manifest)
    {
        string nameVersion = $"{Slug(manifest.Name)}-{Slug(manifest.Version)}";
        if (request.OutputTemplate is null) return Path.Combine(request.WorkingDirectory, nameVersion);
        string template = Path.IsPathRooted(request.OutputTemplate) ? request.OutputTemplate : Path.Combine(request.WorkingDirectory, request.OutputTemplate);
        return Directory.Exists(template) ? Path.Combine(template, nameVersion) : template;
    }

    /// <summary>common.pathSlugify: drop what is not a word character, space, '.', '_' or '-'; lower
    /// case; runs of '-' and spaces become one '-'.</summary>
    public static string Slug(string s)
    {
        var kept = new System.Text.StringBuilder();
        foreach (char c in s) if (char.IsLetterOrDigit(c) || c is '_' or ' ' or '.' or '-' or '\t') kept.Append(c);
        string t = kept.ToString().Trim().ToLowerInvariant();
        return System.Text.RegularExpressions.Regex.Replace(t, "[-\\s]+", "-");
    }

    /// <summary>The file's bytes in the compression asked for, or null with why. gzip is .NET's deflate
    /// in gzip framing (mtime 0, no name), bzip2 SharpCompress's, xz liblzma's (Xz.cs): each gives the
    /// same bytes for the same stream.</summary>
    private static byte[]? Compress(byte[] stream, string compression, out string? error)
    {
        error = null;
        if (compression == "none") return stream;
        if (compression == "xz") return Xz.Encode(stream, out error);
        using var output = new MemoryStream();
        using (Stream encoder = compression == "gzip"
                   ? new GZipStream(output, CompressionLevel.SmallestSize, leaveOpen: true)
                   : BZip2Stream.Create(output, BzMode.Compress, false, true, false))
            encoder.Write(stream);
        return output.ToArray();
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    private static ImageError NoPool() => new("InternalError", $"zpool \"{Zpool}\" does not exist: create it first (zpool create {Zpool} DEVICE)");

}
