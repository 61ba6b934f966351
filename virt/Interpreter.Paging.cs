using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SmartOS.Virt.Internal;

namespace SmartOS.Virt;

/*
 * Paging and the software TLB (Interpreter.cs, "memory").
 *
 * Every guest load, store and instruction fetch names a linear address. With CR0.PG set the
 * interpreter translates it through the 4-level page tables at CR3 (4 KiB, 2 MiB and 1 GiB pages),
 * checks present, writable (CR0.WP), user/supervisor and no-execute (EFER.NXE) as the processor
 * does, sets the accessed bits on the walk and the dirty bit on a write, and raises #PF with CR2
 * and the error code (P, W, U, RSVD, I/D) when the access is not allowed. With CR0.PG clear the
 * linear address is the physical one (the flat state a bare Interpreter starts in).
 *
 * Glossary
 *   TLB       two direct-mapped tables of 1024 entries indexed by the linear page number, one
 *             for supervisor accesses and one for user accesses (CPL 3); _tlb points at the one
 *             of the current privilege level, so a ring change is one pointer store.
 *   ReadTag   the linear page base when a load may use the entry's host pointer; a load's fast
 *             path is one compare: tag == address & (page mask | size - 1), so an access that is
 *             misaligned (and so may straddle two pages) or hits a page not in RAM takes the slow
 *             path, which handles it in pieces.
 *   WriteTag  the same for stores; set only for a page that is RAM, writable at this privilege,
 *             already dirty, and holds no decoded code, so a store needs no dirty-bit update and
 *             no self-modifying-code check on the fast path.
 *   ITLB      the fetch side: linear page (and a user bit) to the decoded-op page of its physical
 *             page; consulted only when rip crosses into another page.
 *
 * Rules
 *   1. The decode cache is keyed by physical page (self-modifying code is seen through any alias).
 *      Decoded ops embed linear branch targets, so a physical page executed through a second
 *      linear page is decoded again for that page (_pageLinear).
 *   2. A page becomes code (_codePage) before its first op runs; at that moment write-TLB entries
 *      that map it are dropped, so later stores to it take the slow path and invalidate ops.
 *   3. mov to CR3 drops non-global entries; invlpg drops one page; a change of CR0.PG/WP, CR4.PGE/
 *      PAE or EFER.NXE drops everything; the ITLB is dropped with any of them. Like the processor,
 *      the interpreter does not notice page-table stores without one of these.
 *   4. Page tables must be in RAM: a walk that reaches outside RAM stops the VM (Fault), as the
 *      wild accesses of Interpreter.cs do.
 */
public sealed unsafe partial class Interpreter
{
    private const int TlbBits = 10, TlbSize = 1 << TlbBits;
    private const ulong PageMask = ~0xFFFUL;
    /// <summary>A tag no masked address equals (bits 4-11 are always clear in a masked address).</summary>
    private const ulong NoTag = ulong.MaxValue;

    // Page-table entry bits.
    private const ulong PteP = 1, PteRw = 2, PteUs = 4, PteA = 0x20, PteD = 0x40, PtePs = 0x80, PteG = 0x100;
    private const ulong PteNx = 1UL << 63, PteAddr = 0x000F_FFFF_FFFF_F000UL;

    // Permission bits kept in a TLB entry.
    private const uint PermWrite = 1, PermUser = 2, PermExec = 4, PermDirty = 8, PermGlobal = 16, PermRam = 32;

    // #PF error code bits.
    private const uint PfPresent = 1, PfWrite = 2, PfUser = 4, PfReserved = 8, PfFetch = 16;

    [StructLayout(LayoutKind.Sequential)]
    private struct TlbEntry
    {
        public ulong ReadTag;
        public ulong WriteTag;
        /// <summary>Host address minus linear address, for RAM pages.</summary>
        public ulong Addend;
        /// <summary>The linear page base the translation is for, NoTag when empty.</summary>
        public ulong Vpn;
        public ulong Phys;
        public uint Perm;
    }

    private readonly TlbEntry* _tlbSupervisor;
    private readonly TlbEntry* _tlbUser;
    private TlbEntry* _tlb;
    private readonly ulong[] _itlbTag = new ulong[ItlbSize];
    private readonly Op[]?[] _itlbOps = new Op[]?[ItlbSize];
    private readonly ulong[] _pageLinear;
    private const int ItlbSize = 256;

    /// <summary>TLB misses (page walks or identity fills) so far.</summary>
    public long TlbMisses { get; private set; }

    private static TlbEntry* NewTlb()
    {
        var t = (TlbEntry*)NativeMemory.Alloc((nuint)(TlbSize * sizeof(TlbEntry)));
        for (int i = 0; i < TlbSize; i++) t[i] = new TlbEntry { ReadTag = NoTag, WriteTag = NoTag, Vpn = NoTag };
        return t;
    }

    /// <summary>Drops TLB entries: all of them, or (globalToo false) those not marked global.</summary>
    private void FlushTlb(bool globalToo)
    {
        FlushTable(_tlbSupervisor, globalToo);
        FlushTable(_tlbUser, globalToo);
        FlushItlb();
    }

    private static void FlushTable(TlbEntry* t, bool globalToo)
    {
        for (int i = 0; i < TlbSize; i++)
            if (globalToo || (t[i].Perm & PermGlobal) == 0) t[i] = new TlbEntry { ReadTag = NoTag, WriteTag = NoTag, Vpn = NoTag };
    }

    private void FlushItlb()
    {
        Array.Fill(_itlbTag, NoTag);
        Array.Clear(_itlbOps);
    }

    /// <summary>invlpg: drops the page holding <paramref name="linear"/> from both TLBs.</summary>
    private void FlushPage(ulong linear)
    {
        ulong page = linear & PageMask;
        int i = (int)((linear >> 12) & (TlbSize - 1));
        if (_tlbSupervisor[i].Vpn == page) _tlbSupervisor[i] = new TlbEntry { ReadTag = NoTag, WriteTag = NoTag, Vpn = NoTag };
        if (_tlbUser[i].Vpn == page) _tlbUser[i] = new TlbEntry { ReadTag = NoTag, WriteTag = NoTag, Vpn = NoTag };
        FlushItlb();
    }

    /// <summary>Rule 2: a page that now holds code loses its write-TLB entries.</summary>
    private void MarkCodePage(ulong physPage)
    {
        if (_codePage[physPage] != 0) return;
        _codePage[physPage] = 1;
        ulong phys = physPage << 12;
        for (int i = 0; i < TlbSize; i++)
        {
            if (_tlbSupervisor[i].Phys == phys) _tlbSupervisor[i].WriteTag = NoTag;
            if (_tlbUser[i].Phys == phys) _tlbUser[i].WriteTag = NoTag;
        }
    }

    private bool PagingEnabled => (_cr0 & Cr0Pg) != 0;

    /// <summary>Translates <paramref name="linear"/> for an access of the current privilege level
    /// and returns its TLB entry (filled if it was not there), or raises #PF.</summary>
    private TlbEntry* Translate(ulong linear, bool write, bool fetch) => Translate(linear, write, fetch, _cpl == 3);

    private TlbEntry* Translate(ulong linear, bool write, bool fetch, bool user)
    {
        ulong page = linear & PageMask;
        TlbEntry* t = user ? _tlbUser : _tlbSupervisor;
        TlbEntry* e = t + (int)((linear >> 12) & (TlbSize - 1));
        if (e->Vpn == page && Allowed(e->Perm, write, fetch, user) && (!write || (e->Perm & PermDirty) != 0)) return e;
        TlbMisses++;
        ulong phys;
        uint perm;
        if (!PagingEnabled)
        {
            phys = page;
            perm = PermWrite | PermUser | PermExec | PermDirty;
        }
        else
        {
            if (!IsCanonical(linear))
                throw new GuestFault(VcpuExitReason.Fault, _instrRip, $"#GP: non-canonical address 0x{linear:x}", ExcGp, 0);
            Walk(linear, write, fetch, user, out phys, out perm);
        }
        if (phys < _memSize) perm |= PermRam;
        e->Vpn = page;
        e->Phys = phys;
        e->Perm = perm;
        e->Addend = (ulong)_mem + phys - page;
        bool ram = (perm & PermRam) != 0;
        e->ReadTag = ram ? page : NoTag;
        bool writable = ram && Allowed(perm, true, false, user) && (perm & PermDirty) != 0 && _codePage[phys >> 12] == 0;
        e->WriteTag = writable ? page : NoTag;
        return e;
    }

    private bool Allowed(uint perm, bool write, bool fetch, bool user)
    {
        if (user && (perm & PermUser) == 0) return false;
        if (write && (perm & PermWrite) == 0 && (user || (_cr0 & Cr0Wp) != 0)) return false;
        if (fetch && (perm & PermExec) == 0) return false;
        return true;
    }

    private static bool IsCanonical(ulong a) => (ulong)((long)(a << 16) >> 16) == a;

    /// <summary>The 4-level walk: accessed bits on the way, the dirty bit on a write, #PF on a
    /// missing entry or a refused access.</summary>
    private void Walk(ulong linear, bool write, bool fetch, bool user, out ulong phys, out uint perm)
    {
        if ((_efer & EferLma) == 0)
            throw new GuestFault(VcpuExitReason.Unimplemented, _instrRip, "paging without long mode (32-bit paging) is not implemented");
        ulong table = _cr3 & PteAddr;
        bool rw = true, us = true, nx = false, global = false;
        ulong pageSize = 0;
        ulong entryAddr = 0, entry = 0;
        for (int level = 3; level >= 0; level--)
        {
            entryAddr = table + ((linear >> (12 + 9 * level)) & 0x1FF) * 8;
            entry = ReadPte(entryAddr);
            if ((entry & PteP) == 0) throw PageFault(linear, write, fetch, user, 0);
            if ((entry & PteNx) != 0 && (_efer & EferNxe) == 0) throw PageFault(linear, write, fetch, user, PfPresent | PfReserved);
            if (level == 3 && (entry & PtePs) != 0) throw PageFault(linear, write, fetch, user, PfPresent | PfReserved);
            rw &= (entry & PteRw) != 0;
            us &= (entry & PteUs) != 0;
            nx |= (entry & PteNx) != 0 && (_efer & EferNxe) != 0;
            if ((entry & PteA) == 0) WritePte(entryAddr, entry |= PteA);
            if (level == 0 || (entry & PtePs) != 0)
            {
                pageSize = 1UL << (12 + 9 * level);
                global = (entry & PteG) != 0 && (_cr4 & Cr4Pge) != 0;
                break;
            }
            table = entry & PteAddr;
        }
        perm = (rw ? PermWrite : 0) | (us ? PermUser : 0) | (nx ? 0 : PermExec) | (global ? PermGlobal : 0);
        if (!Allowed(perm, write, fetch, user)) throw PageFault(linear, write, fetch, user, PfPresent);
        if (write && (entry & PteD) == 0) WritePte(entryAddr, entry |= PteD);
        if ((entry & PteD) != 0) perm |= PermDirty;
        ulong frame = entry & PteAddr & ~(pageSize - 1);
        phys = frame + (linear & (pageSize - 1) & PageMask);
    }

    private ulong ReadPte(ulong a)
    {
        if (a + 8 > _memSize) throw new GuestFault(VcpuExitReason.Fault, _instrRip, $"#PF: page table entry at 0x{a:x} is outside RAM");
        return *(ulong*)(_mem + a);
    }

    private void WritePte(ulong a, ulong v)
    {
        *(ulong*)(_mem + a) = v;
        if (_codePage[a >> 12] != 0) InvalidateCode(a, 8);
    }

    private GuestFault PageFault(ulong linear, bool write, bool fetch, bool user, uint code)
    {
        code |= (write ? PfWrite : 0) | (user ? PfUser : 0) | (fetch && (_efer & EferNxe) != 0 ? PfFetch : 0);
        string what = fetch ? "instruction fetch" : write ? "write" : "read";
        string why = (code & PfReserved) != 0 ? "reserved bit set" : (code & PfPresent) != 0 ? "protection violation" : "page not present";
        return new GuestFault(VcpuExitReason.Fault, _instrRip, $"#PF: {what} at 0x{linear:x}, {why} (error code 0x{code:x})", ExcPf, code, linear);
    }

    // ---- the slow halves of Read and Write (Interpreter.cs) ----------------------------------

    [MethodImpl(MethodImplOptions.NoInlining)]
    private ulong ReadSlow(ulong a, int size)
    {
        if (((a & 0xFFF) + (ulong)size) > 0x1000) return ReadSplit(a, size);
        TlbEntry* e = Translate(a, false, false);
        if ((e->Perm & PermRam) != 0)
        {
            byte* p = (byte*)(e->Addend + a);
            return size switch { 1 => *p, 2 => *(ushort*)p, 4 => *(uint*)p, _ => *(ulong*)p };
        }
        return ReadDevice(e->Phys + (a & 0xFFF), size);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void WriteSlow(ulong a, int size, ulong v)
    {
        if (((a & 0xFFF) + (ulong)size) > 0x1000) { WriteSplit(a, size, v); return; }
        TlbEntry* e = Translate(a, true, false);
        ulong phys = e->Phys + (a & 0xFFF);
        if ((e->Perm & PermRam) == 0) { WriteDevice(phys, size, v); return; }
        Store((byte*)(e->Addend + a), size, v);
        if (_codePage[phys >> 12] != 0) InvalidateCode(phys, size);
    }

    /// <summary>An access that straddles two pages: both are translated (and may fault) before
    /// any byte is written, then it is done a byte at a time.</summary>
    private ulong ReadSplit(ulong a, int size)
    {
        Translate(a, false, false);
        Translate(a + (ulong)size - 1, false, false);
        ulong v = 0;
        for (int i = 0; i < size; i++) v |= ReadSlow(a + (ulong)i, 1) << (8 * i);
        return v;
    }

    private void WriteSplit(ulong a, int size, ulong v)
    {
        Translate(a, true, false);
        Translate(a + (ulong)size - 1, true, false);
        for (int i = 0; i < size; i++) WriteSlow(a + (ulong)i, 1, v >> (8 * i));
    }

    /// <summary>Rule 2 of Interpreter.cs's memory: a host pointer to <paramref name="size"/> bytes at
    /// linear <paramref name="a"/> for SSE and string operations; the bytes must be RAM and on one
    /// page (or on pages that are physically adjacent), else the access faults.</summary>
    private byte* RamPointer(ulong a, int size, bool write, string what)
    {
        TlbEntry* e = Translate(a, write, false);
        ulong last = a + (ulong)size - 1;
        if ((e->Perm & PermRam) != 0 && (last & PageMask) != (a & PageMask))
        {
            TlbEntry* e2 = Translate(last, write, false);
            if ((e2->Perm & PermRam) == 0 || e2->Phys != e->Phys + 0x1000) throw WildAccess(a, size, what);
        }
        if ((e->Perm & PermRam) == 0 || e->Phys + (a & 0xFFF) + (ulong)size > _memSize) throw WildAccess(a, size, what);
        ulong phys = e->Phys + (a & 0xFFF);
        if (write && (_codePage[phys >> 12] | _codePage[(phys + (ulong)size - 1) >> 12]) != 0) InvalidateCode(phys, size);
        return (byte*)(e->Addend + a);
    }

    // ---- instruction fetch -------------------------------------------------------------------

    /// <summary>The decoded-op page for the linear page of <paramref name="rip"/> (ITLB, then a
    /// translation for execute; rule 1 for aliases).</summary>
    private Op[] FetchPage(ulong rip)
    {
        ulong key = (rip & PageMask) | (_cpl == 3 ? 1UL : 0);
        int i = (int)((rip >> 12) & (ItlbSize - 1));
        if (_itlbTag[i] == key)
        {
            _fetchPhys = _itlbPhys[i];
            return _itlbOps[i]!;
        }
        TlbEntry* e = Translate(rip, false, true);
        ulong phys = e->Phys;
        if ((e->Perm & PermRam) == 0)
            throw new GuestFault(VcpuExitReason.Fault, _instrRip, $"#PF: instruction fetch at 0x{_instrRip:x}, outside RAM");
        ulong p = phys >> 12;
        var ops = _pages[p] ??= new Op[GuestMemory.PageSize];
        if (_pageLinear[p] != (rip & PageMask))
        {
            // Rule 1: the branch targets in these ops are for another linear page.
            if (_pageLinear[p] != NoTag)
            {
                Array.Clear(ops);
                DropPageBlocks(p);
                FlushItlb();
            }
            _pageLinear[p] = rip & PageMask;
        }
        MarkCodePage(p);
        _itlbTag[i] = key;
        _itlbOps[i] = ops;
        _itlbPhys[i] = p;
        _fetchPhys = p;
        return ops;
    }

    /// <summary>The physical address of code byte <paramref name="linear"/> (the decoder's reader).</summary>
    private ulong FetchPhysical(ulong linear)
    {
        TlbEntry* e = Translate(linear, false, true);
        if ((e->Perm & PermRam) == 0) return ulong.MaxValue;
        return e->Phys + (linear & 0xFFF);
    }
}
