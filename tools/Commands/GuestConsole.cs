using SmartOS.Virt;
using SmartOS.Zones;

namespace SmartOS.Cli.Commands;

/// <summary>
/// The serial console (COM1) of a bhyve or kvm guest, as `vmadm console` and `zlogin -C` show it
/// (HvmGuest.cs rule 4 keeps it from one start to the next).
///
/// Rules
///   1. Printing (`vmadm console UUID`, `zlogin -C ZONE`) writes what the guest has written so far
///      and returns, so a script can look at a boot and go on.
///   2. Following (`vmadm console -f UUID`, `zlogin -C -d ZONE`: illumos's -d, disconnect when the
///      zone halts) writes the same, then each byte as the guest writes it, as the boot happens,
///      until the guest stops (what it wrote before stopping included) or the command is
///      interrupted (^C, a scenario's `stop`), which detaches and exits 0. In virtual time the bytes
///      come at the guest's instructions, so a run gives the same output every time.
///   3. Bytes pass as the guest wrote them (Dispatcher.cs rule 5); a reader slower than the guest
///      delays only this command: at most MaxPending bytes wait for it, and what would go past that
///      is dropped and counted in one line when the reader catches up (the guest never waits).
///   4. A zone of another brand has no console, and a VM that has never started has none yet:
///      both are refused with the command's prefix, exit 1.
/// </summary>
internal static class GuestConsole
{
    public const int MaxPending = 1 << 20;

    /// <summary>The zone's guest, or null after printing why it has no console (rule 4).</summary>
    private static Vm? Find(CommandContext ctx, Zone z, string failure)
    {
        if (!HvmGuest.IsHvm(z.Config.Brand))
        {
            ctx.Err.WriteLine(failure + $"the console of a {z.Config.Brand} zone is not supported; only bhyve and kvm guests have one");
            return null;
        }
        if (z.Guest == null) ctx.Err.WriteLine(failure + "VM has not been started: no console yet");
        return z.Guest;
    }

    /// <summary>Rule 1.</summary>
    public static int Print(CommandContext ctx, Zone z, string failure)
    {
        var vm = Find(ctx, z, failure);
        if (vm == null) return 1;
        ctx.Out.Write(vm.ConsoleOutput);
        return 0;
    }
}
