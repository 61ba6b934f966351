using System.Buffers.Binary;
using SmartOS.Kernel;
using SmartOS.Virt.Devices;

namespace SmartOS.Virt.Tests;

/// <summary>
/// The virtio-blk device driven register by register, as a guest driver would, with requests the test
/// writes into guest memory, over a block device held in an array (VirtioBlk.cs rules 1 to 3).
/// </summary>
public class VirtioBlkTests
{
    private const ulong Desc = 0x20_0000, Avail = 0x20_1000, Used = 0x20_2000, Header = 0x21_0000, Data = 0x22_0000, Status = 0x23_0000;
    private const ushort Next = 1, DeviceWrites = 2, Indirect = 4;

    /// <summary>A disk in memory that counts flushes and can be told to fail.</summary>
    internal sealed class ArrayDisk(int size) : IBlockDevice
    {
        public readonly byte[] Bytes = new byte[size];
        public int FlushCount;
        public bool Failing;
        public long Size => Bytes.Length;

        public BlockStatus Read(long offset, Span<byte> destination)
        {
            if (Failing) return BlockStatus.IoError;
            if (offset < 0 || offset > Bytes.Length - destination.Length) return BlockStatus.OutOfRange;
            Bytes.AsSpan((int)offset, destination.Length).CopyTo(destination);
            return BlockStatus.Ok;
        }

        public BlockStatus Write(long offset, ReadOnlySpan<byte> source)
        {
            if (Failing) return BlockStatus.IoError;
            if (offset < 0 || offset > Bytes.Length - source.Length) return BlockStatus.OutOfRange;
            source.CopyTo(Bytes.AsSpan((int)offset));
            return BlockStatus.Ok;
        }

        public BlockStatus Flush()
        {
            FlushCount++;
            return Failing ? BlockStatus.IoError : BlockStatus.Ok;
        }
    }

    private sealed class Rig : IDisposable
    {
        public readonly Scheduler Scheduler = new();
        public readonly ArrayDisk Disk = new(64 * 1024);
        public readonly Vm Vm;
        public readonly VirtioBlk Blk;
        private ushort _avail;

        public Rig()
        {
            // sti; hlt; jmp back: a guest that never touches the device itself.
            Vm = new Vm(Scheduler, new VmConfig { Image = [0xFB, 0xF4, 0xEB, 0xFC], Backend = VmBackend.Interpreter, MemorySize = 4UL << 20 });
            Blk = Vm.AttachDisk(Disk, "disk0-serial");
            Vm.Start();
            Scheduler.RunFor(1000);
            SetUpQueue();
        }

        public void SetUpQueue()
        {
            _avail = 0;
            Reg(0x70, 1 | 2 | 8);
            Reg(0x30, 0);
            Reg(0x38, 16);
            Reg(0x80, (uint)Desc); Reg(0x84, 0);
            Reg(0x90, (uint)Avail); Reg(0x94, 0);
            Reg(0xA0, (uint)Used); Reg(0xA4, 0);
            Reg(0x44, 1);
            Reg(0x70, 1 | 2 | 8 | 4);
        }

        public void Reg(uint offset, ulong value) => Blk.Write(Blk.BaseAddress + offset, 4, value);
        public ulong Reg(uint offset) => Blk.Read(Blk.BaseAddress + offset, 4);

        public void Descriptor(int i, ulong addr, uint len, ushort flags, ushort next = 0)
        {
            Vm.Memory.TryWriteUInt64(Desc + 16UL * (ulong)i, addr);
            Vm.Memory.TryWriteUInt32(Desc + 16UL * (ulong)i + 8, len);
            Vm.Memory.TryWriteUInt16(Desc + 16UL * (ulong)i + 12, flags);
            Vm.Memory.TryWriteUInt16(Desc + 16UL * (ulong)i + 14, next);
        }

        public void WriteHeader(uint type, ulong sector)
        {
            Vm.Memory.TryWriteUInt32(Header, type);
            Vm.Memory.TryWriteUInt32(Header + 4, 0);
            Vm.Memory.TryWriteUInt64(Header + 8, sector);
        }

        /// <summary>Header, data (device-writable for IN and GET_ID), status: the usual three-descriptor request.</summary>
        public (byte Status, uint UsedLength) Request(uint type, ulong sector, uint length, bool deviceWrites)
        {
            WriteHeader(type, sector);
            Vm.Memory.TryWrite(Status, [0xEE]);
            Descriptor(0, Header, 16, Next, length > 0 ? (ushort)1 : (ushort)2);
            Descriptor(1, Data, length, (ushort)(Next | (deviceWrites ? DeviceWrites : 0)), 2);
            Descriptor(2, Status, 1, DeviceWrites);
            return Submit(0);
        }

        public (byte Status, uint UsedLength) Submit(ushort head)
        {
            Vm.Memory.TryWriteUInt16(Avail + 4 + 2UL * (ulong)(_avail % 16), head);
            _avail++;
            Vm.Memory.TryWriteUInt16(Avail + 2, _avail);
            Reg(0x50, 0);
            Vm.Memory.TryReadUInt32(Used + 4 + 8UL * (ulong)((_avail - 1) % 16) + 4, out uint len);
            var s = new byte[1];
            Vm.Memory.TryRead(Status, s);
            return (s[0], len);
        }

        public ushort UsedIndex => Vm.Memory.TryReadUInt16(Used + 2, out ushort v) ? v : (ushort)0;

        public void Dispose() => Vm.Dispose();
    }

    [Test]
    public void The_device_says_it_is_a_block_device_and_shows_its_capacity_in_sectors()
    {
        using var rig = new Rig();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Reg(0x008), Is.EqualTo(2UL), "device id");
            Assert.That(rig.Reg(0x100) | rig.Reg(0x104) << 32, Is.EqualTo(128UL), "64 KiB in 512-byte sectors");
            Assert.That(rig.Blk.BaseAddress, Is.EqualTo(Vm.VirtioBlkBase));
        }
        rig.Reg(0x14, 0);
        Assert.That(rig.Reg(0x10) & (1 << 9), Is.Not.Zero, "VIRTIO_BLK_F_FLUSH offered");
    }

    [Test]
    public void A_write_then_a_read_move_the_bytes_through_the_disk()
    {
        using var rig = new Rig();
        var data = new byte[1024];
        for (int i = 0; i < data.Length; i++) data[i] = (byte)(i * 7 + 3);
        rig.Vm.Memory.TryWrite(Data, data);
        var write = rig.Request(VirtioBlk.TypeOut, 4, 1024, deviceWrites: false);
        Assert.That(rig.Disk.Bytes.AsSpan(4 * 512, 1024).ToArray(), Is.EqualTo(data));
        rig.Vm.Memory.TryWrite(Data, new byte[1024]);
        var read = rig.Request(VirtioBlk.TypeIn, 4, 1024, deviceWrites: true);
        var back = new byte[1024];
        rig.Vm.Memory.TryRead(Data, back);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(write, Is.EqualTo((VirtioBlk.StatusOk, 1u)));
            Assert.That(read, Is.EqualTo((VirtioBlk.StatusOk, 1025u)), "used length: the data and the status byte");
            Assert.That(back, Is.EqualTo(data));
            Assert.That((rig.Blk.Reads, rig.Blk.Writes, rig.Blk.BytesRead, rig.Blk.BytesWritten), Is.EqualTo((1L, 1L, 1024L, 1024L)));
            Assert.That(rig.Blk.Error, Is.Null);
        }
    }

    [Test]
    public void A_request_split_over_many_descriptors_with_the_header_and_data_in_one_is_served()
    {
        using var rig = new Rig();
        // Header and the first 512 data bytes in one readable descriptor, 512 more in a second.
        var first = new byte[16 + 512];
        BinaryPrimitives.WriteUInt32LittleEndian(first, VirtioBlk.TypeOut);
        BinaryPrimitives.WriteUInt64LittleEndian(first.AsSpan(8), 2);
        first.AsSpan(16).Fill(0xAB);
        rig.Vm.Memory.TryWrite(Header, first);
        rig.Vm.Memory.TryWrite(Data, Enumerable.Repeat((byte)0xCD, 512).ToArray());
        rig.Descriptor(0, Header, (uint)first.Length, Next, 1);
        rig.Descriptor(1, Data, 512, Next, 2);
        rig.Descriptor(2, Status, 1, DeviceWrites);
        var result = rig.Submit(0);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(result.Status, Is.EqualTo(VirtioBlk.StatusOk));
            Assert.That(rig.Disk.Bytes[2 * 512], Is.EqualTo(0xAB));
            Assert.That(rig.Disk.Bytes[3 * 512], Is.EqualTo(0xCD));
        }
    }

    [Test]
    public void Flush_reaches_the_block_device()
    {
        using var rig = new Rig();
        var result = rig.Request(VirtioBlk.TypeFlush, 0, 0, deviceWrites: false);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(result.Status, Is.EqualTo(VirtioBlk.StatusOk));
            Assert.That(rig.Disk.FlushCount, Is.EqualTo(1));
            Assert.That(rig.Blk.Flushes, Is.EqualTo(1));
        }
    }

    [Test]
    public void Get_id_answers_the_serial_padded_with_nuls()
    {
        using var rig = new Rig();
        rig.Vm.Memory.TryWrite(Data, Enumerable.Repeat((byte)0xFF, 20).ToArray());
        var result = rig.Request(VirtioBlk.TypeGetId, 0, 20, deviceWrites: true);
        var id = new byte[20];
        rig.Vm.Memory.TryRead(Data, id);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(result, Is.EqualTo((VirtioBlk.StatusOk, 21u)));
            Assert.That(System.Text.Encoding.ASCII.GetString(id).TrimEnd('\0'), Is.EqualTo("disk0-serial"));
            Assert.That(id[12..], Is.All.Zero);
        }
    }

    [TestCase(128UL, 512u, "past the end")]
    [TestCase(127UL, 1024u, "runs past the end")]
    [TestCase(ulong.MaxValue, 512u, "a sector number that would overflow")]
    [TestCase(0UL, 100u, "not whole sectors")]
    public void A_read_out_of_range_gets_ioerr_and_leaves_guest_memory_alone(ulong sector, uint length, string why)
    {
        using var rig = new Rig();
        rig.Vm.Memory.TryWrite(Data, Enumerable.Repeat((byte)0x5A, 1024).ToArray());
        var result = rig.Request(VirtioBlk.TypeIn, sector, length, deviceWrites: true);
        var after = new byte[length];
        rig.Vm.Memory.TryRead(Data, after);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(result.Status, Is.EqualTo(VirtioBlk.StatusIoError), why);
            Assert.That(rig.Blk.OutOfRange, Is.EqualTo(1));
            Assert.That(after, Is.All.EqualTo(0x5A));
            Assert.That(rig.Blk.Error, Is.Null, "a bad request does not stop the device");
        }
    }

    [Test]
    public void A_write_out_of_range_gets_ioerr_and_changes_nothing()
    {
        using var rig = new Rig();
        rig.Vm.Memory.TryWrite(Data, Enumerable.Repeat((byte)0x77, 1024).ToArray());
        var result = rig.Request(VirtioBlk.TypeOut, 127, 1024, deviceWrites: false);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(result.Status, Is.EqualTo(VirtioBlk.StatusIoError));
            Assert.That(rig.Disk.Bytes, Is.All.Zero);
        }
    }

    [Test]
    public void An_unknown_request_type_gets_unsupp()
    {
        using var rig = new Rig();
        var result = rig.Request(11, 0, 512, deviceWrites: false); // VIRTIO_BLK_T_DISCARD: not offered
        using (Assert.EnterMultipleScope())
        {
            Assert.That(result.Status, Is.EqualTo(VirtioBlk.StatusUnsupported));
            Assert.That(rig.Blk.Unsupported, Is.EqualTo(1));
        }
    }

    [Test]
    public void A_failing_store_gets_ioerr_and_a_count()
    {
        using var rig = new Rig();
        rig.Disk.Failing = true;
        var read = rig.Request(VirtioBlk.TypeIn, 0, 512, deviceWrites: true);
        var flush = rig.Request(VirtioBlk.TypeFlush, 0, 0, deviceWrites: false);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(read.Status, Is.EqualTo(VirtioBlk.StatusIoError));
            Assert.That(flush.Status, Is.EqualTo(VirtioBlk.StatusIoError));
            Assert.That(rig.Blk.DeviceErrors, Is.EqualTo(2));
        }
    }

    [Test]
    public void A_data_buffer_outside_guest_memory_gets_ioerr_without_touching_the_disk()
    {
        using var rig = new Rig();
        rig.WriteHeader(VirtioBlk.TypeOut, 0);
        rig.Descriptor(0, Header, 16, Next, 1);
        rig.Descriptor(1, 0x7_0000_0000UL, 512, Next, 2);
        rig.Descriptor(2, Status, 1, DeviceWrites);
        var result = rig.Submit(0);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(result.Status, Is.EqualTo(VirtioBlk.StatusIoError));
            Assert.That(rig.Blk.BadRequests, Is.EqualTo(1));
            Assert.That(rig.Blk.Writes, Is.Zero);
            Assert.That(rig.Blk.Error, Is.Null);
        }
    }

    [Test]
    public void A_readable_descriptor_after_a_writable_one_or_a_short_header_gets_ioerr()
    {
        using var rig = new Rig();
        rig.WriteHeader(VirtioBlk.TypeIn, 0);
        rig.Descriptor(0, Header, 16, Next, 1);
        rig.Descriptor(1, Data, 512, Next | DeviceWrites, 2);
        rig.Descriptor(2, Data + 4096, 512, Next, 3);
        rig.Descriptor(3, Status, 1, DeviceWrites);
        var misordered = rig.Submit(0);
        // Nothing says where the status byte is: no status, the chain comes back with used length 0.
        rig.Vm.Memory.TryWrite(Status, [0xEE]);
        rig.Descriptor(4, Header, 16, 0);
        var noStatus = rig.Submit(4);
        rig.Descriptor(5, Header, 8, Next, 6);
        rig.Descriptor(6, Status, 1, DeviceWrites);
        var shortHeader = rig.Submit(5);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(misordered.Status, Is.EqualTo(VirtioBlk.StatusIoError));
            Assert.That(noStatus, Is.EqualTo(((byte)0xEE, 0u)), "no status byte written, used length 0");
            Assert.That(shortHeader.Status, Is.EqualTo(VirtioBlk.StatusIoError));
            Assert.That(rig.Blk.BadRequests, Is.EqualTo(3));
            Assert.That(rig.UsedIndex, Is.EqualTo((ushort)3), "every chain is handed back");
            Assert.That(rig.Blk.Error, Is.Null);
        }
    }

    [Test]
    public void A_descriptor_loop_or_an_indirect_descriptor_stops_the_device_and_the_vm_goes_on()
    {
        using var rig = new Rig();
        rig.Descriptor(0, Header, 16, Next, 1);
        rig.Descriptor(1, Header, 16, Next, 0);
        rig.Submit(0);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Blk.Error, Does.Contain("loops"));
            Assert.That(rig.Reg(0x70) & 0x40, Is.EqualTo(0x40UL), "DEVICE_NEEDS_RESET");
            Assert.That(rig.Blk.RingErrors, Is.EqualTo(1));
            Assert.That(rig.Vm.State, Is.EqualTo(VmState.Running));
        }
        using var rig2 = new Rig();
        rig2.Descriptor(0, Header, 16, Indirect);
        rig2.Submit(0);
        Assert.That(rig2.Blk.Error, Does.Contain("indirect"));
    }

    [Test]
    public void After_a_reset_the_device_serves_again()
    {
        using var rig = new Rig();
        rig.Descriptor(0, Header, 16, Next, 1);
        rig.Descriptor(1, Header, 16, Next, 0);
        rig.Submit(0);
        Assert.That(rig.Blk.Error, Is.Not.Null);
        rig.Reg(0x70, 0);
        Assert.That(rig.Blk.Error, Is.Null);
        rig.SetUpQueue();
        var result = rig.Request(VirtioBlk.TypeFlush, 0, 0, deviceWrites: false);
        Assert.That(result.Status, Is.EqualTo(VirtioBlk.StatusOk));
    }

    [Test]
    public void A_stopped_vm_serves_no_more_requests()
    {
        using var rig = new Rig();
        rig.Vm.Stop();
        rig.Vm.Memory.TryWrite(Data, [1, 2, 3]);
        rig.Request(VirtioBlk.TypeOut, 0, 512, deviceWrites: false);
        Assert.That(rig.Disk.Bytes[0], Is.Zero);
    }

    [Test]
    public void The_blkcheck_guest_writes_flushes_reads_back_and_finds_its_blocks_on_the_next_boot()
    {
        var image = CGuestTests.Build("blkcheck.c", 2);
        var disk = new ArrayDisk(1 << 20);
        string first = RunBlkcheck(image, disk);
        Assert.That(disk.FlushCount, Is.EqualTo(2));
        string sum = BlkcheckSum(disk);
        Assert.That(first, Is.EqualTo(
            "disk vda-test capacity 2048 sectors\nfound no earlier run\n"
            + $"wrote generation 1 checksum {sum} read back equal\nflushed\nread past the end: status 1\n"));
        string second = RunBlkcheck(image, disk);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(second, Does.Contain($"found generation 1 checksum {sum} intact\n"));
            Assert.That(second, Does.Contain("wrote generation 2 checksum "));
            Assert.That(BlkcheckSum(disk), Is.Not.EqualTo(sum));
        }
        // A flipped byte on the disk is seen by the next run.
        disk.Bytes[512 + 100] ^= 1;
        Assert.That(RunBlkcheck(image, disk), Does.Contain("CORRUPT"));
    }

    /// <summary>Runs blkcheck.c on a disk; the console, after asserting that it powered off with 0
    /// (or, for a damaged disk, with its checksum verdict printed).</summary>
    internal static string RunBlkcheck(byte[] image, IBlockDevice disk)
    {
        var scheduler = new Scheduler();
        using var vm = new Vm(scheduler, new VmConfig { Image = image, MemorySize = 8UL << 20, Backend = VmBackend.Interpreter });
        vm.AttachDisk(disk, "vda-test");
        vm.Start();
        scheduler.RunUntil(() => vm.IsStopped, scheduler.Now + 100 * Time.Second);
        Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.PoweredOff), vm.StopDetail + "\n" + vm.ConsoleOutput);
        return vm.ConsoleOutput;
    }

    /// <summary>blkcheck.c's checksum (FNV-1a 64) of the 32 KiB after sector 0, computed here.</summary>
    internal static string BlkcheckSum(IBlockDevice disk)
    {
        var data = new byte[32768];
        Assert.That(disk.Read(512, data), Is.EqualTo(BlockStatus.Ok));
        ulong h = 0xcbf29ce484222325UL;
        foreach (byte b in data)
        {
            h ^= b;
            h *= 0x100000001b3UL;
        }
        return "0x" + h.ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
    }
}
