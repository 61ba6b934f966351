/*
 * vmadm send and vmadm receive: a VM moved between hosts as one framed stream of its configuration and
 * its datasets (VM.js's send/receive and vmbundle, in a format of this project's own).
 *
 * Terms
 *   VM datasets  what VM.js's getAllDatasets sends: the VM's root dataset zones/<uuid> with every
 *                dataset below it (zones/<uuid>/data, delegated), and the bhyve/kvm disk volumes
 *                zones/<uuid>-disk<N> beside it. Parents come before children.
 *   @sending     the snapshot VM.js takes (recursively) of each dataset to send and destroys after,
 *                on both hosts; here too.
 *   chunk        one framed piece of the stream: the JSON, the zone's configuration record, one zfs
 *                send stream, one volume's blocks, one dataset's local properties.
 *
 * The stream (version 1; all integers big-endian)
 *   header   16 bytes "SMARTOS-VMSEND\n\0", u32 version (1), u32 flags (0).
 *   chunk    u8 kind, 3 bytes zero, u32 name length, u64 payload length, the name (UTF-8), the payload,
 *            then 32 bytes: SHA-256 of everything from the kind byte to the payload's end.
 *   kinds    1 JSON      name "JSON"; the VM as vmadm get shows it (what VM.js sends first).
 *            2 CONFIG    name the UUID; the zone's configuration record as zones.conf keeps it, so the
 *                        VM comes back with the same UUID, nics (MAC addresses), alias and properties.
 *            3 STREAM    name dataset@snapshot; a zfs send stream: the dataset's first snapshot in full,
 *                        each later one incremental on the one before (so its snapshots travel, as
 *                        VM.js's zfs send -R carries them), the last being @sending.
 *            4 VOLUME    name volume@snapshot; a volume's zfs send stream (storage/Send/ZvolStream.cs),
 *                        as STREAM: the first snapshot in full, each later one incremental, the last
 *                        being @sending (a name without '@', the volume's @sending in full, still reads).
 *            5 PROPS     name the dataset; "name=value\n" lines, its locally set properties (quota,
 *                        zoned, refreservation, ...) but for those a volume is created with.
 *            255 END     name "END"; u32 the number of chunks before it, and SHA-256 of every byte of
 *                        the stream before this chunk. Nothing may follow it.
 *
 * Rules
 *   1. Send stops a running VM first, as VM.js's send does (VM.stop), and refuses a VM without
 *      datasets ("VM has no datasets."). @sending snapshots are destroyed whatever happens.
 *   2. Receive checks the whole stream before it changes anything: the magic, the version, every
 *      chunk's checksum, the END chunk's count and checksum (a stream cut short or altered anywhere
 *      is refused), the JSON and configuration, the brand, that no VM with the UUID exists (VM.js
 *      create's "VM with UUID X already exists"), that none of its datasets exists, that the zones
 *      pool is there, and the nics against the host's nic tags.
 *   3. Then the datasets are received in the stream's order and the configuration is committed and
 *      installed. A failure on the way (the pool full, a property refused) destroys every dataset the
 *      receive made and the zone's configuration: nothing is left half-received.
 *   4. The received VM is installed and stopped (VM.js's receive ends with VM.install); its VNICs take
 *      a new host-unique index (Host.cs glossary, "VM"), its nics keep their MAC addresses.
 *   5. Streams are built and read whole in memory, bounded by the caller (vmadm: 1 GiB).
 *
 * Not done: a volume's snapshots do not travel (send refuses a VM whose disk volume has some, saying
 * so); a clone's origin does not either: the receiving host gets the dataset whole, as a full stream.
 */
using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SmartOS.Storage;
using SmartOS.Storage.Send;

namespace SmartOS.Zones;

/// <summary>vmadm send and receive of a VM (see the theory statement above).</summary>
public static class VmMigration
{
    public const int Version = 1;
    public const string SendingSnapshot = "sending";
    private static ReadOnlySpan<byte> Magic => "SMARTOS-VMSEND\n\0"u8;
    private const int HeaderLength = 24;
    private const int ChunkHeaderLength = 16;
    private const int HashLength = 32;

    public enum ChunkKind : byte { Json = 1, Config = 2, Stream = 3, Volume = 4, Props = 5, End = 255 }

    /// <summary>One chunk of a stream.</summary>
    public sealed record Chunk(ChunkKind Kind, string Name, byte[] Payload);

    /// <summary>The datasets of a VM that send carries, parents first (the terms above).</summary>
    public static List<string> Datasets(Pool pool, string uuid)
    {
        var list = new List<string>();
        string root = pool.Name + "/" + uuid;
        if (pool.Datasets.Exists(root) && pool.Datasets.List(root, -1, DatasetKinds.Filesystem | DatasetKinds.Volume, out var below).IsOk)
            list.AddRange(below);
        if (pool.Datasets.List(pool.Name, 1, DatasetKinds.Volume, out var volumes).IsOk)
            foreach (string v in volumes)
                if (IsDiskOf(v, root)) list.Add(v);
        return list;
    }

    private static bool IsDiskOf(string name, string root)
    {
        const string Disk = "-disk";
        if (!name.StartsWith(root + Disk, StringComparison.Ordinal)) return false;
        string n = name[(root.Length + Disk.Length)..];
        return n.Length > 0 && n.All(char.IsAsciiDigit);
    }

    // ---- send -----------------------------------------------------------------------------------

    /// <summary>
    /// vmadm send: stops the VM if it runs (rule 1) and writes its stream to output. An error is the
    /// message vmadm prints after "Failed to send VM UUID: ".
    /// </summary>
    public static string? Send(Host host, Zone vm, Stream output)
    {
        if (vm.State >= ZoneState.Ready && host.Zones.Halt(vm.Name) is { IsOk: false } halted) return halted.Message;
        var pool = host.Pools.Find("zones");
        var datasets = pool == null ? [] : Datasets(pool, vm.Name);
        if (pool == null || datasets.Count == 0) return "VM has no datasets.";
        host.Mounts.Commit();
        var snapshots = new List<string>();
        try
        {
            var chunks = new List<Chunk>
            {
                new(ChunkKind.Json, "JSON", Encoding.UTF8.GetBytes(VmModel.ToJson(vm).ToJsonString(VmModel.Pretty) + "\n")),
                new(ChunkKind.Config, vm.Name, JsonSerializer.SerializeToUtf8Bytes(vm.Config, ZoneJson.Default.ZoneConfig)),
            };
            foreach (string ds in datasets)
            {
                string? error = IsVolume(pool, ds) ? AddVolume(pool, ds, chunks, snapshots) : AddFilesystem(pool, ds, chunks, snapshots);
                if (error != null) return error;
                chunks.Add(new(ChunkKind.Props, ds, Properties(pool, ds)));
            }
            Write(chunks, output);
            return null;
        }
        finally
        {
            for (int i = snapshots.Count - 1; i >= 0; i--) pool.Datasets.Destroy(snapshots[i]);
        }
    }

    private static bool IsVolume(Pool pool, string ds) => pool.Datasets.Get(ds, "type", out var t).IsOk && t.Value == "volume";

    /// <summary>A filesystem's snapshots as streams: the first full, each later one on the one before.</summary>
    private static string? AddFilesystem(Pool pool, string ds, List<Chunk> chunks, List<string> made)
    {
        if (TakeSending(pool, ds, made) is string error) return error;
        if (!pool.Datasets.List(ds, 1, DatasetKinds.Snapshot, out var snaps).IsOk) return $"cannot list the snapshots of {ds}";
        string? previous = null;
        foreach (string s in snaps)
        {
            using var stream = new MemoryStream();
            var sent = pool.Datasets.Send(s, new SendOptions { From = previous }, stream);
            if (!sent.IsOk) return sent.Message;
            chunks.Add(new(ChunkKind.Stream, s, stream.ToArray()));
            previous = s;
        }
        return null;
    }

    /// <summary>A volume's snapshots as streams, as a filesystem's: the first full, each later one
    /// incremental on the one before (storage/Send/ZvolStream.cs), the last being @sending.</summary>
    private static string? AddVolume(Pool pool, string ds, List<Chunk> chunks, List<string> made)
    {
        if (TakeSending(pool, ds, made) is string error) return error;
        if (!pool.Datasets.List(ds, 1, DatasetKinds.Snapshot, out var snaps).IsOk) return $"cannot list the snapshots of {ds}";
        string? previous = null;
        foreach (string s in snaps)
        {
            using var stream = new MemoryStream();
            var sent = ZvolStream.Send(pool.Datasets, s, previous, stream);
            if (!sent.IsOk) return sent.Message;
            chunks.Add(new(ChunkKind.Volume, s, stream.ToArray()));
            previous = s;
        }
        return null;
    }

    /// <summary>Takes DS@sending, listed in <paramref name="made"/> to be destroyed after the send.</summary>
    private static string? TakeSending(Pool pool, string ds, List<string> made)
    {
        string sending = ds + "@" + SendingSnapshot;
        // VM.js destroys an @sending left by an earlier send that died before it could.
        if (pool.Datasets.Exists(sending) && pool.Datasets.Destroy(sending) is { IsOk: false } stale) return stale.Message;
        if (pool.Datasets.Snapshot(sending) is { IsOk: false } snap) return snap.Message;
        made.Add(sending);
        return null;
    }

    /// <summary>The properties a volume is created with, which PROPS does not carry.</summary>
    private static readonly string[] s_createdWith = ["volsize", "volblocksize"];

    private static byte[] Properties(Pool pool, string ds)
    {
        var sb = new StringBuilder();
        if (pool.Datasets.GetAll(ds, out var all).IsOk)
            foreach (var p in all)
                if (p.Source == PropertySource.Local && Array.IndexOf(s_createdWith, p.Name) < 0)
                    sb.Append(p.Name).Append('=').Append(p.Number is long n ? n.ToString(CultureInfo.InvariantCulture) : p.Value).Append('\n');
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    /// <summary>Frames chunks into a stream (the format above).</summary>
    public static void Write(IReadOnlyList<Chunk> chunks, Stream output)
    {
        using var all = new MemoryStream();
        Span<byte> header = stackalloc byte[HeaderLength];
        Magic.CopyTo(header);
        BinaryPrimitives.WriteUInt32BigEndian(header[16..], Version);
        BinaryPrimitives.WriteUInt32BigEndian(header[20..], 0);
        all.Write(header);
        foreach (var c in chunks) WriteChunk(all, c);
        var end = new byte[4 + HashLength];
        BinaryPrimitives.WriteInt32BigEndian(end, chunks.Count);
        SHA256.HashData(all.GetBuffer().AsSpan(0, (int)all.Length), end.AsSpan(4));
        WriteChunk(all, new Chunk(ChunkKind.End, "END", end));
        output.Write(all.GetBuffer(), 0, (int)all.Length);
    }

    private static void WriteChunk(MemoryStream all, Chunk c)
    {
        byte[] name = Encoding.UTF8.GetBytes(c.Name);
        int start = (int)all.Length;
        Span<byte> head = stackalloc byte[ChunkHeaderLength];
        head.Clear();
        head[0] = (byte)c.Kind;
        BinaryPrimitives.WriteInt32BigEndian(head[4..], name.Length);
        BinaryPrimitives.WriteInt64BigEndian(head[8..], c.Payload.Length);
        all.Write(head);
        all.Write(name);
        all.Write(c.Payload);
        Span<byte> hash = stackalloc byte[HashLength];
        SHA256.HashData(all.GetBuffer().AsSpan(start, (int)all.Length - start), hash);
        all.Write(hash);
    }

    // ---- reading a stream ---------------------------------------------------------------------

    /// <summary>Reads and checks a whole stream (rule 2's first half); null with why when it is bad.</summary>
    public static List<Chunk>? Read(ReadOnlySpan<byte> data, out string? error)
    {
        error = null;
        if (data.Length < HeaderLength || !data[..16].SequenceEqual(Magic))
        {
            error = "invalid stream (bad magic number)";
            return null;
        }
        uint version = BinaryPrimitives.ReadUInt32BigEndian(data[16..]);
        if (version != Version)
        {
            error = $"unsupported stream version {version} (this host reads version {Version})";
            return null;
        }
        var chunks = new List<Chunk>();
        int at = HeaderLength;
        Span<byte> hash = stackalloc byte[HashLength];
        while (true)
        {
            if (data.Length - at < ChunkHeaderLength + HashLength) return Bad("invalid stream (truncated)", out error);
            var head = data.Slice(at, ChunkHeaderLength);
            var kind = (ChunkKind)head[0];
            int nameLength = BinaryPrimitives.ReadInt32BigEndian(head[4..]);
            long payloadLength = BinaryPrimitives.ReadInt64BigEndian(head[8..]);
            if (nameLength is < 0 or > 1024 || payloadLength < 0 || payloadLength > data.Length - at - ChunkHeaderLength - HashLength - nameLength)
                return Bad(nameLength is >= 0 and <= 1024 && payloadLength >= 0 ? "invalid stream (truncated)" : "invalid stream (bad chunk header)", out error);
            int body = ChunkHeaderLength + nameLength + (int)payloadLength;
            SHA256.HashData(data.Slice(at, body), hash);
            if (!hash.SequenceEqual(data.Slice(at + body, HashLength))) return Bad("invalid stream (checksum mismatch)", out error);
            string name = Encoding.UTF8.GetString(data.Slice(at + ChunkHeaderLength, nameLength));
            byte[] payload = data.Slice(at + ChunkHeaderLength + nameLength, (int)payloadLength).ToArray();
            if (kind == ChunkKind.End)
            {
                if (payload.Length != 4 + HashLength || BinaryPrimitives.ReadInt32BigEndian(payload) != chunks.Count)
                    return Bad("invalid stream (chunk count mismatch)", out error);
                SHA256.HashData(data[..at], hash);
                if (!hash.SequenceEqual(payload.AsSpan(4))) return Bad("invalid stream (checksum mismatch)", out error);
                if (at + body + HashLength != data.Length) return Bad("invalid stream (data after the end)", out error);
                return chunks;
            }
            if (!Enum.IsDefined(kind)) return Bad($"invalid stream (unknown chunk type {(byte)kind})", out error);
            chunks.Add(new Chunk(kind, name, payload));
            at += body + HashLength;
        }
    }

    private static List<Chunk>? Bad(string why, out string? error)
    {
        error = why;
        return null;
    }

    // ---- receive --------------------------------------------------------------------------------

    /// <summary>
    /// vmadm receive: checks the stream whole, then makes the VM's datasets and zone (rules 2 to 4).
    /// Returns the VM's UUID, or null with the message vmadm prints after "Failed to receive VM: ".
    /// </summary>
    public static string? Receive(Host host, ReadOnlySpan<byte> data, out string? error)
    {
        var chunks = Read(data, out error);
        if (chunks == null) return null;
        var cfg = Plan(host, chunks, out var pool, out error);
        if (cfg == null) return null;
        var made = new List<string>();
        error = Apply(pool!, chunks, made);
        if (error == null)
        {
            // The datasets are the stream's, received above: install uses them as they are.
            var committed = host.Zones.Commit(cfg);
            if (committed.IsOk && host.Zones.Install(cfg.Name, new VmDatasets.InstallOptions(null, null, Given: false, Existing: true)) is { IsOk: false } installed)
            {
                host.Zones.Delete(cfg.Name);
                committed = installed;
            }
            if (!committed.IsOk) error = committed.Message;
        }
        if (error != null)
        {
            for (int i = made.Count - 1; i >= 0; i--)
                if (pool!.Datasets.Exists(made[i])) pool.Datasets.Destroy(made[i], DestroyFlags.Recursive);
            return null;
        }
        foreach (string ds in made)
            if (!IsVolume(pool!, ds) && host.Mounts.Find(ds) == null && MountsByDefault(pool!, ds)) host.Mounts.Mount(ds);
        return cfg.Name;
    }

    /// <summary>Everything receive checks before it changes anything (rule 2); the configuration to commit.</summary>
    private static ZoneConfig? Plan(Host host, List<Chunk> chunks, out Pool? pool, out string? error)
    {
        pool = null;
        if (chunks.Count < 2 || chunks[0].Kind != ChunkKind.Json) return Refuse("unable to find JSON in stream.", out error);
        if (chunks[1].Kind != ChunkKind.Config) return Refuse("unable to receive JSON", out error);
        JsonObject json;
        ZoneConfig? cfg;
        try
        {
            json = JsonNode.Parse(chunks[0].Payload) as JsonObject ?? throw new JsonException("not an object");
            cfg = JsonSerializer.Deserialize(chunks[1].Payload, ZoneJson.Default.ZoneConfig);
        }
        catch (JsonException e)
        {
            return Refuse("unable to receive JSON: " + e.Message, out error);
        }
        if (cfg?.Vm == null || cfg.Uuid is not string uuid || !VmModel.IsUuid(uuid) || cfg.Name != uuid
            || json["uuid"]?.GetValueKind() != JsonValueKind.String || (string?)json["uuid"] != uuid)
            return Refuse("unable to receive JSON: the configuration is not a VM's, or names another UUID", out error);
        // A VM's zonepath is its root dataset's mountpoint (Host.cs glossary): a stream does not choose another.
        if (cfg.ZonePath != "/zones/" + uuid) return Refuse($"Invalid value(s) for: zonepath ({cfg.ZonePath})", out error);
        if (ZoneTable.BrandProblem(cfg.Brand) is { IsOk: false } brand) return Refuse(brand.Message, out error);
        if (host.Zones.Find(uuid) != null) return Refuse($"VM with UUID {uuid} already exists", out error);
        pool = host.Pools.Find("zones");
        if (pool == null) return Refuse("cannot open 'zones': no such pool", out error);
        for (int i = 2; i < chunks.Count; i++)
        {
            string ds = chunks[i].Name.Split('@')[0];
            if (chunks[i].Kind == ChunkKind.Json || chunks[i].Kind == ChunkKind.Config) return Refuse("invalid stream (a second JSON chunk)", out error);
            if (ds != "zones/" + uuid && !ds.StartsWith("zones/" + uuid + "/", StringComparison.Ordinal) && !IsDiskOf(ds, "zones/" + uuid))
                return Refuse($"invalid stream: dataset {ds} is not one of VM {uuid}'s", out error);
            if (pool.Datasets.Exists(ds))
                return Refuse($"cannot receive new filesystem stream: destination '{ds}' exists", out error);
        }
        // The VNICs take a host-unique index (rule 4): z{Index}_net{N}.
        int index = host.Zones.NextVmIndex();
        string oldPrefix = $"z{cfg.Vm.Index.ToString(CultureInfo.InvariantCulture)}_";
        cfg.Vm.Index = index;
        foreach (var net in cfg.Nets)
            if (net.GlobalNic != null && net.Physical.StartsWith(oldPrefix, StringComparison.Ordinal))
                net.Physical = $"z{index.ToString(CultureInfo.InvariantCulture)}_" + net.Physical[oldPrefix.Length..];
        if (ZoneTable.CheckConfig(cfg) is { IsOk: false } bad) return Refuse(bad.Message, out error);
        if (ZoneNets.Check(cfg.Nets, host) is ZoneNetProblem nets) return Refuse(nets.Message, out error);
        error = null;
        return cfg;
    }

    private static ZoneConfig? Refuse(string why, out string? error)
    {
        error = why;
        return null;
    }

    /// <summary>Makes the datasets in the stream's order (rule 3), listing each made in <paramref name="made"/>.</summary>
    private static string? Apply(Pool pool, List<Chunk> chunks, List<string> made)
    {
        for (int i = 2; i < chunks.Count; i++)
        {
            var c = chunks[i];
            string ds = c.Name.Split('@')[0];
            string? error = c.Kind switch
            {
                ChunkKind.Stream => ReceiveStream(pool, c, ds, made),
                ChunkKind.Volume => ReceiveVolume(pool, c, made),
                _ => SetProperties(pool, c),
            };
            if (error != null) return error;
        }
        // VM.js's receive destroys each dataset's @sending once it is in.
        foreach (string ds in made)
        {
            string sending = ds + "@" + SendingSnapshot;
            if (pool.Datasets.Exists(sending) && pool.Datasets.Destroy(sending) is { IsOk: false } d) return d.Message;
        }
        return null;
    }

    private static string? ReceiveStream(Pool pool, Chunk c, string ds, List<string> made)
    {
        bool first = !pool.Datasets.Exists(ds);
        var received = pool.Datasets.Receive(new MemoryStream(c.Payload, writable: false), c.Name, new ReceiveOptions(), out _);
        if (first && pool.Datasets.Exists(ds)) made.Add(ds);
        return received.IsOk ? null : received.Message;
    }

    /// <summary>A volume's stream, received as the volume and its @sending (destroyed after, as a
    /// filesystem's); a reserved volume's refreservation comes with its PROPS chunk, refused there when
    /// the pool has no room for it.</summary>
    private static string? ReceiveVolume(Pool pool, Chunk c, List<string> made)
    {
        // A chunk named VOL@SNAP is one of the volume's snapshots (the first full, the others
        // incremental); one named VOL alone, as the first version wrote it, is its @sending in full.
        int at = c.Name.IndexOf('@');
        string volume = at < 0 ? c.Name : c.Name[..at], snap = at < 0 ? SendingSnapshot : c.Name[(at + 1)..];
        bool first = !pool.Datasets.Exists(volume);
        if (ZvolStream.Receive(pool.Datasets, c.Payload, volume, snap) is string error) return error;
        if (first) made.Add(volume);
        var committed = pool.Commit();
        return committed.IsOk ? null : committed.Message;
    }

    private static string? SetProperties(Pool pool, Chunk c)
    {
        foreach (string line in Encoding.UTF8.GetString(c.Payload).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = line.IndexOf('=');
            if (eq <= 0) return "invalid stream (bad property line)";
            var set = pool.Datasets.Set(c.Name, line[..eq], line[(eq + 1)..]);
            if (!set.IsOk) return set.Message;
        }
        return null;
    }

    /// <summary>Whether zfs would mount a filesystem on its own: canmount=on and a mountpoint path.</summary>
    private static bool MountsByDefault(Pool pool, string fs)
        => pool.Datasets.Get(fs, "canmount", out var canmount).IsOk && canmount.Value == "on"
           && pool.Datasets.Get(fs, "mountpoint", out var mountpoint).IsOk && mountpoint.Value.StartsWith('/');
}
