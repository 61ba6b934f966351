using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;

namespace SmartOS.Virt.Tests;

/// <summary>The ACPI tables of a PC guest, decoded by our parser and (where acpica-tools is
/// installed) by iasl, the reference disassembler.</summary>
public class AcpiTests
{
    private static readonly Acpi.Layout Pc = new(LinuxBoot.LocalApicAddress, LinuxBoot.IoApicAddress, Cpus: 1);

    private static Dictionary<string, byte[]> Tables(GuestMemory memory)
    {
        ulong rsdp = Acpi.Write(memory, LinuxBoot.BiosAreaAddress, Pc);
        Assert.That(Acpi.FindRsdp(memory), Is.EqualTo(rsdp), "found by scanning the BIOS area as an OS does");
        var tables = Acpi.Parse(memory, rsdp, out string error);
        Assert.That(tables, Is.Not.Null, error);
        return tables!;
    }

    [Test]
    public void The_tables_chain_from_the_rsdp_with_every_checksum_right()
    {
        using var memory = new GuestMemory(2UL << 20);
        var t = Tables(memory);
        Assert.That(t.Keys, Is.EquivalentTo(new[] { "RSDP", "XSDT", "RSDT", "FACP", "APIC", "DSDT" }));
        var fadt = t["FACP"];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(t["RSDP"][15], Is.EqualTo(2), "RSDP revision 2 (XSDT)");
            Assert.That(fadt.Length, Is.EqualTo(276), "FADT revision 6 length");
            Assert.That(fadt[8], Is.EqualTo(6));
            Assert.That(BinaryPrimitives.ReadUInt16LittleEndian(fadt.AsSpan(46)), Is.EqualTo(9), "SCI_INT");
            Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(fadt.AsSpan(56)), Is.EqualTo(0x600u), "PM1a_EVT_BLK");
            Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(fadt.AsSpan(64)), Is.EqualTo(0x604u), "PM1a_CNT_BLK");
            Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(fadt.AsSpan(112)) & (1u << 20), Is.Zero, "not hardware-reduced");
            Assert.That(BinaryPrimitives.ReadUInt16LittleEndian(fadt.AsSpan(109)) & 0x08, Is.Zero, "IAPC_BOOT_ARCH: MSI supported (virtio-pci offers MSI-X)");
            Assert.That(t["DSDT"].AsSpan(36, 1)[0], Is.EqualTo(0x10), "the DSDT's AML opens with Scope (\\_SB)");
            Assert.That(Encoding.ASCII.GetString(t["DSDT"]), Does.Contain("PCI0").And.Contain("_PRT").And.Contain("_CRS"));
        }
        var madt = t["APIC"];
        Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(madt.AsSpan(36)), Is.EqualTo(0xFEE0_0000u), "local APIC address");
        Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(madt.AsSpan(40)), Is.EqualTo(1u), "PCAT_COMPAT");
        var entries = Acpi.MadtEntries(madt);
        Assert.That(entries.Select(e => e.Type), Is.EqualTo(new byte[] { 0, 1, 2, 2, 2, 2, 4 }));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(entries[0].Bytes, Is.EqualTo(new byte[] { 0, 8, 0, 0, 1, 0, 0, 0 }), "CPU 0, APIC id 0, enabled");
            Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(entries[1].Bytes.AsSpan(4)), Is.EqualTo(0xFEC0_0000u), "I/O APIC address");
            Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(entries[1].Bytes.AsSpan(8)), Is.Zero, "GSI base 0");
            Assert.That(entries[2].Bytes[3], Is.EqualTo(0), "IRQ 0 ...");
            Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(entries[2].Bytes.AsSpan(4)), Is.EqualTo(2u), "... is GSI 2");
        }
    }

    [Test]
    public void Hardware_reduced_tables_say_so_and_have_no_pm_blocks()
    {
        using var memory = new GuestMemory(2UL << 20);
        ulong rsdp = Acpi.Write(memory, LinuxBoot.BiosAreaAddress, Pc with { HardwareReduced = true });
        var fadt = Acpi.Parse(memory, rsdp, out string error)!["FACP"];
        Assert.That(error, Is.Empty);
        Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(fadt.AsSpan(112)) & (1u << 20), Is.Not.Zero);
        Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(fadt.AsSpan(56)), Is.Zero);
    }

    [Test]
    public void A_corrupt_table_is_named_by_the_parser()
    {
        using var memory = new GuestMemory(2UL << 20);
        var t = Tables(memory);
        ulong madt = BinaryPrimitives.ReadUInt64LittleEndian(t["XSDT"].AsSpan(44));
        memory.TryRead(madt + 50, new byte[1]);
        memory.TryWrite(madt + 50, [0x77]);
        Assert.That(Acpi.Parse(memory, LinuxBoot.BiosAreaAddress, out string error), Is.Null);
        Assert.That(error, Does.StartWith("APIC at 0x").And.EndWith("checksum is not zero"));
        memory.TryWrite(LinuxBoot.BiosAreaAddress + 9, [(byte)'X']);
        Assert.That(Acpi.Parse(memory, LinuxBoot.BiosAreaAddress, out error), Is.Null);
        Assert.That(error, Is.EqualTo("RSDP: checksum of the first 20 bytes is not zero"));
    }

    [Test]
    public void The_pm1_blocks_keep_sci_en_set_and_the_enable_bits()
    {
        var pm = new AcpiPm();
        Assert.That(pm.ReadPort(Acpi.Pm1aControlPort, 2) & 1, Is.EqualTo(1UL), "already in ACPI mode");
        pm.WritePort(Acpi.Pm1aControlPort, 2, 0);
        Assert.That(pm.ReadPort(Acpi.Pm1aControlPort, 2) & 1, Is.EqualTo(1UL), "SCI_EN cannot be cleared");
        pm.WritePort(Acpi.Pm1aEventPort + 2, 2, 0x0100);
        Assert.That(pm.ReadPort(Acpi.Pm1aEventPort + 2, 2), Is.EqualTo(0x0100UL));
        Assert.That(pm.ReadPort(Acpi.Pm1aEventPort, 2), Is.Zero, "no status bit is ever raised");
    }

    [Test]
    public void Iasl_disassembles_every_table_without_complaint()
    {
        string? iasl = Environment.GetEnvironmentVariable("PATH")?.Split(':').Select(d => Path.Combine(d, "iasl")).FirstOrDefault(File.Exists);
        if (iasl == null) Assert.Ignore("iasl (acpica-tools) is not installed");
        using var memory = new GuestMemory(2UL << 20);
        var t = Tables(memory);
        string dir = Path.Combine(Path.GetTempPath(), "smartos-acpi-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var text = new Dictionary<string, string>();
            foreach (var name in new[] { "FACP", "APIC", "DSDT", "XSDT", "RSDT" })
            {
                string file = Path.Combine(dir, name.ToLowerInvariant() + ".dat");
                File.WriteAllBytes(file, t[name]);
                var psi = new ProcessStartInfo(iasl!, ["-d", file]) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir };
                using var p = Process.Start(psi)!;
                string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
                Assert.That(p.WaitForExit(30_000), Is.True, "iasl did not finish");
                Assert.That(p.ExitCode, Is.Zero, $"iasl -d {name}: {output}");
                text[name] = File.ReadAllText(Path.ChangeExtension(file, ".dsl"));
                if (name == "DSDT") TestContext.Out.WriteLine(text[name]);
            }
            using (Assert.EnterMultipleScope())
            {
                Assert.That(text["APIC"], Does.Contain("Local Apic Address : FEE00000"));
                Assert.That(text["APIC"], Does.Contain("Address : FEC00000"));
                Assert.That(text["APIC"], Does.Contain("Interrupt : 00000002"));
                Assert.That(text["FACP"], Does.Contain("PM1A Event Block Address : 00000600"));
                Assert.That(text["FACP"], Does.Not.Contain("Warning"));
                Assert.That(text["APIC"] + text["FACP"] + text["XSDT"], Does.Not.Contain("Incorrect checksum"));
                Assert.That(text["DSDT"], Does.Contain("DefinitionBlock"));
                Assert.That(text["DSDT"], Does.Contain("Device (PCI0)"));
                Assert.That(text["DSDT"], Does.Contain("EisaId (\"PNP0A03\")"));
                Assert.That(text["DSDT"], Does.Contain("WordBusNumber"));
                Assert.That(text["DSDT"], Does.Contain("0xC0000000").And.Contain("0xCFFFFFFF"), "the PCI hole");
                Assert.That(text["DSDT"], Does.Contain("0x001FFFFF"), "_PRT reaches slot 31");
                Assert.That(text["DSDT"], Does.Not.Contain("Error").And.Not.Contain("Unknown"));
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
