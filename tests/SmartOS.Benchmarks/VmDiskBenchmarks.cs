using System.Diagnostics;
using SmartOS.Kernel;
using SmartOS.Storage;
using SmartOS.Virt;
using SmartOS.Virt.Devices;

namespace SmartOS.Benchmarks;

/// <summary>
/// virtio-blk on a volume (virt/Devices/VirtioBlk.cs over storage/VolumeDevice.cs): 4 KiB requests
/// posted on the ring and served as a guest's notify serves them, without guest instructions, so the
/// figure is the device and the volume path alone. Prints MiB/s of writes (a T_FLUSH, a txg commit,
/// every 256 writes), of reads of those blocks, the cost of one flush, and the bytes the steady-state
/// path allocates per request (ARCHITECTURE.md: it should allocate nothing in the device).
/// </summary>
public static class VmDiskBenchmarks
{
    private const ulong Desc = 0x20_0000, Avail = 0x20_1000, Used = 0x20_2000, Header = 0x21_0000, Data = 0x22_0000, Status = 0x23_0000;
    private const int Block = 4096, Requests = 16384, FlushEvery = 256;

    public static void Run(TextWriter o)
    {
        string dir = Directory.CreateTempSubdirectory("smartos-vmdisk-bench-").FullName;
        try
        {
            long now = 0;
            var options = new PoolOptions { Clock = () => now += 1, Random = new HostRandom(7) };
            Check(Pool.Create(dir, "zones", [VdevSpec.Disk("zones0")], 512L << 20, options, out var created));
            using var pool = created!;
            Check(pool.Datasets.Create("zones/bench-disk0", DatasetType.Volume, new Dictionary<string, string> { ["volsize"] = (128L << 20).ToString(System.Globalization.CultureInfo.InvariantCulture) }));
            Check(VolumeDevice.Open(pool, "zones/bench-disk0", out var volume));
            var scheduler = new Scheduler();
            using var vm = new Vm(scheduler, new VmConfig { Image = [0xFB, 0xF4, 0xEB, 0xFC], Backend = VmBackend.Interpreter, MemorySize = 4UL << 20 });
            var blk = vm.AttachDisk(volume, "disk0");
            vm.Start();
            scheduler.RunFor(1000);
            var ring = new Ring(vm, blk);
            var payload = new byte[Block];
            new HostRandom(8).NextBytes(payload);
            vm.Memory.TryWrite(Data, payload);
            // Warm-up: the JIT and the block cache's first buffers.
            for (int i = 0; i < 512; i++) ring.Request(VirtioBlk.TypeOut, (ulong)i * (Block / 512), deviceWrites: false);
            ring.Request(VirtioBlk.TypeFlush, 0, deviceWrites: false);

            long flushTicks = 0, flushes = 0;
            var sw = Stopwatch.StartNew();
            long allocBefore = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < Requests; i++)
            {
                ring.Request(VirtioBlk.TypeOut, (ulong)i * (Block / 512), deviceWrites: false);
                if (i % FlushEvery == FlushEvery - 1)
                {
                    long t = Stopwatch.GetTimestamp();
                    ring.Request(VirtioBlk.TypeFlush, 0, deviceWrites: false);
                    flushTicks += Stopwatch.GetTimestamp() - t;
                    flushes++;
                }
            }
            double writeSeconds = sw.Elapsed.TotalSeconds;
            long writeAlloc = GC.GetAllocatedBytesForCurrentThread() - allocBefore;
            sw.Restart();
            allocBefore = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < Requests; i++) ring.Request(VirtioBlk.TypeIn, (ulong)i * (Block / 512), deviceWrites: true);
            double readSeconds = sw.Elapsed.TotalSeconds;
            long readAlloc = GC.GetAllocatedBytesForCurrentThread() - allocBefore;
            // The device alone, over a block device that does no work: what the ring costs.
            var nullDisk = new NullDisk();
            using var vm2 = new Vm(scheduler, new VmConfig { Image = [0xFB, 0xF4, 0xEB, 0xFC], Backend = VmBackend.Interpreter, MemorySize = 4UL << 20 });
            var blk2 = vm2.AttachDisk(nullDisk, "null");
            vm2.Start();
            scheduler.RunFor(1000);
            var ring2 = new Ring(vm2, blk2);
            for (int i = 0; i < 1000; i++) ring2.Request(VirtioBlk.TypeIn, 0, deviceWrites: true);
            allocBefore = GC.GetAllocatedBytesForCurrentThread();
            sw.Restart();
            for (int i = 0; i < Requests; i++) ring2.Request(VirtioBlk.TypeIn, 0, deviceWrites: true);
            double deviceSeconds = sw.Elapsed.TotalSeconds;
            long deviceAlloc = GC.GetAllocatedBytesForCurrentThread() - allocBefore;
            double mib = (double)Requests * Block / (1 << 20);
            o.WriteLine($"vmdisk: {Requests} requests of {Block} B on a 128 MiB volume (errors: {blk.DeviceErrors + blk.OutOfRange + blk.BadRequests})");
            o.WriteLine($"vmdisk write: {mib / writeSeconds:F1} MiB/s with a T_FLUSH every {FlushEvery} writes; a flush (txg commit of 1 MiB) {Stopwatch.GetElapsedTime(0, flushTicks / Math.Max(1, flushes)).TotalMilliseconds:F2} ms; {writeAlloc / Requests} B allocated per write");
            o.WriteLine($"vmdisk read: {mib / readSeconds:F1} MiB/s; {readAlloc / Requests} B allocated per read");
            o.WriteLine($"vmdisk device alone (a block device that does nothing): {Requests / deviceSeconds / 1e6:F2} M requests/s; {deviceAlloc / Requests} B allocated per request");
            volume.Close();
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static void Check(StorageResult r)
    {
        if (!r.IsOk) throw new InvalidOperationException(r.Message);
    }

    private sealed class NullDisk : IBlockDevice
    {
        public long Size => 1L << 30;
        public BlockStatus Read(long offset, Span<byte> destination) => BlockStatus.Ok;
        public BlockStatus Write(long offset, ReadOnlySpan<byte> source) => BlockStatus.Ok;
        public BlockStatus Flush() => BlockStatus.Ok;
    }

    /// <summary>A driver's side of the request queue, as virt/guests/runtime/virtio_blk.c sets it up.</summary>
    private sealed class Ring
    {
        private readonly Vm _vm;
        private readonly VirtioBlk _blk;
        private ushort _avail;

        public Ring(Vm vm, VirtioBlk blk)
        {
            _vm = vm;
            _blk = blk;
            Reg(0x70, 1 | 2 | 8);
            Reg(0x30, 0);
            Reg(0x38, 16);
            Reg(0x80, (uint)Desc); Reg(0x84, 0);
            Reg(0x90, (uint)Avail); Reg(0x94, 0);
            Reg(0xA0, (uint)Used); Reg(0xA4, 0);
            Reg(0x44, 1);
            Reg(0x70, 1 | 2 | 8 | 4);
            Descriptor(0, Header, 16, 1, 1);
            Descriptor(2, Status, 1, 2, 0);
        }

        private void Reg(uint offset, ulong value) => _blk.Write(_blk.BaseAddress + offset, 4, value);

        private void Descriptor(int i, ulong addr, uint len, ushort flags, ushort next)
        {
            var m = _vm.Memory;
            m.TryWriteUInt64(Desc + 16UL * (ulong)i, addr);
            m.TryWriteUInt32(Desc + 16UL * (ulong)i + 8, len);
            m.TryWriteUInt16(Desc + 16UL * (ulong)i + 12, flags);
            m.TryWriteUInt16(Desc + 16UL * (ulong)i + 14, next);
        }

        public void Request(uint type, ulong sector, bool deviceWrites)
        {
            var m = _vm.Memory;
            m.TryWriteUInt32(Header, type);
            m.TryWriteUInt64(Header + 8, sector);
            bool data = type != VirtioBlk.TypeFlush;
            Descriptor(0, Header, 16, 1, data ? (ushort)1 : (ushort)2);
            if (data) Descriptor(1, Data, Block, (ushort)(1 | (deviceWrites ? 2 : 0)), 2);
            m.TryWriteUInt16(Avail + 4 + 2UL * (ulong)(_avail % 16), 0);
            _avail++;
            m.TryWriteUInt16(Avail + 2, _avail);
            Reg(0x50, 0);
        }
    }
}
