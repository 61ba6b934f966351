using Iced.Intel;
using M = Iced.Intel.Mnemonic;

namespace SmartOS.Virt.Tests.Differential;

/// <summary>
/// What backs each CPUID feature bit the interpreter advertises (Interpreter.Cpuid.cs rule 1): the
/// instructions of the feature, every form of which IsaDifferentialTests runs against the real CPU,
/// or for bits that are not instructions, the test that exercises them.
/// </summary>
internal static class CpuFeatureCoverage
{
    public static readonly Dictionary<string, M[]> Mnemonics = new()
    {
        ["sse"] =
        [
            M.Addps, M.Addss, M.Subps, M.Subss, M.Mulps, M.Mulss, M.Divps, M.Divss, M.Minps, M.Minss, M.Maxps, M.Maxss,
            M.Sqrtps, M.Sqrtss, M.Cmpps, M.Cmpss, M.Comiss, M.Ucomiss, M.Cvtsi2ss, M.Cvtss2si, M.Cvttss2si, M.Shufps,
            M.Unpcklps, M.Unpckhps, M.Movhlps, M.Movlhps, M.Movlps, M.Movhps, M.Movss, M.Movmskps, M.Andps, M.Andnps,
            M.Orps, M.Xorps, M.Movaps, M.Movups,
        ],
        ["sse2"] =
        [
            M.Addpd, M.Addsd, M.Subpd, M.Subsd, M.Mulpd, M.Mulsd, M.Divpd, M.Divsd, M.Minpd, M.Minsd, M.Maxpd, M.Maxsd,
            M.Sqrtpd, M.Sqrtsd, M.Cmppd, M.Cmpsd, M.Comisd, M.Ucomisd, M.Cvtsi2sd, M.Cvtsd2si, M.Cvttsd2si, M.Cvtss2sd,
            M.Cvtsd2ss, M.Cvtdq2ps, M.Cvtdq2pd, M.Cvtps2dq, M.Cvttps2dq, M.Cvtpd2dq, M.Cvttpd2dq, M.Cvtps2pd, M.Cvtpd2ps,
            M.Shufpd, M.Unpcklpd, M.Unpckhpd, M.Movlpd, M.Movhpd, M.Movsd, M.Movmskpd, M.Andpd, M.Andnpd, M.Orpd, M.Xorpd,
            M.Movapd, M.Movupd, M.Movdqa, M.Movdqu, M.Movq, M.Movd,
            M.Paddb, M.Paddw, M.Paddd, M.Paddq, M.Psubb, M.Psubw, M.Psubd, M.Psubq, M.Paddsb, M.Paddsw, M.Paddusb,
            M.Paddusw, M.Psubsb, M.Psubsw, M.Psubusb, M.Psubusw, M.Pmullw, M.Pmulhw, M.Pmulhuw, M.Pmuludq, M.Pmaddwd,
            M.Pcmpeqb, M.Pcmpeqw, M.Pcmpeqd, M.Pcmpgtb, M.Pcmpgtw, M.Pcmpgtd, M.Psllw, M.Pslld, M.Psllq, M.Psrlw,
            M.Psrld, M.Psrlq, M.Psraw, M.Psrad, M.Pslldq, M.Psrldq, M.Packsswb, M.Packssdw, M.Packuswb, M.Punpcklbw,
            M.Punpcklwd, M.Punpckldq, M.Punpcklqdq, M.Punpckhbw, M.Punpckhwd, M.Punpckhdq, M.Punpckhqdq, M.Pmovmskb,
            M.Pshufd, M.Pshuflw, M.Pshufhw, M.Pminub, M.Pmaxub, M.Pminsw, M.Pmaxsw, M.Pavgb, M.Pavgw, M.Psadbw,
            M.Pextrw, M.Pinsrw, M.Pand, M.Pandn, M.Por, M.Pxor,
        ],
        ["sse3"] = [M.Addsubps, M.Addsubpd, M.Haddps, M.Haddpd, M.Hsubps, M.Hsubpd, M.Movddup, M.Movsldup, M.Movshdup, M.Lddqu],
        ["ssse3"] =
        [
            M.Pshufb, M.Palignr, M.Pabsb, M.Pabsw, M.Pabsd, M.Psignb, M.Psignw, M.Psignd, M.Phaddw, M.Phaddd, M.Phaddsw,
            M.Phsubw, M.Phsubd, M.Phsubsw, M.Pmulhrsw, M.Pmaddubsw,
        ],
        ["sse4.1"] =
        [
            M.Pmulld, M.Pmuldq, M.Pminsb, M.Pmaxsb, M.Pminuw, M.Pmaxuw, M.Pminsd, M.Pmaxsd, M.Pminud, M.Pmaxud,
            M.Pextrb, M.Pextrd, M.Pextrq, M.Pinsrb, M.Pinsrd, M.Pinsrq, M.Pmovsxbw, M.Pmovsxbd, M.Pmovsxbq, M.Pmovsxwd,
            M.Pmovsxwq, M.Pmovsxdq, M.Pmovzxbw, M.Pmovzxbd, M.Pmovzxbq, M.Pmovzxwd, M.Pmovzxwq, M.Pmovzxdq, M.Ptest,
            M.Pblendw, M.Pblendvb, M.Blendps, M.Blendpd, M.Blendvps, M.Blendvpd, M.Insertps, M.Extractps, M.Roundps,
            M.Roundpd, M.Roundss, M.Roundsd, M.Phminposuw, M.Packusdw, M.Pcmpeqq, M.Mpsadbw, M.Movntdqa, M.Dpps, M.Dppd,
        ],
        ["sse4.2"] = [M.Pcmpgtq, M.Crc32, M.Pcmpestri, M.Pcmpestri64, M.Pcmpestrm, M.Pcmpestrm64, M.Pcmpistri, M.Pcmpistrm],
        // tzcnt (BMI1), like popcnt and lzcnt, is in DifferentialTests' register sequences: run one at a
        // time through RunVector on this sandboxed host, the F3 0F B8/BC encodings now and then kill
        // the test process (the hypervisor's instruction emulation; DifferentialTests notes kvm-pvm).
        ["bmi1"] = [M.Andn, M.Bextr, M.Blsi, M.Blsmsk, M.Blsr],
        ["bmi2"] = [M.Bzhi, M.Mulx, M.Pdep, M.Pext, M.Rorx, M.Sarx, M.Shlx, M.Shrx],
        ["movbe"] = [M.Movbe],
        ["cx8"] = [M.Cmpxchg8b],
        ["cx16"] = [M.Cmpxchg16b],
    };

    /// <summary>Flags the SDM leaves undefined after an instruction (masked in the comparison).</summary>
    public static ulong UndefinedFlags(M mnemonic) => mnemonic switch
    {
        M.Tzcnt => SequenceGenerator.AF | SequenceGenerator.PF | SequenceGenerator.SF | SequenceGenerator.OF,
        M.Bextr => SequenceGenerator.AF | SequenceGenerator.PF | SequenceGenerator.SF,
        M.Andn or M.Blsi or M.Blsmsk or M.Blsr or M.Bzhi => SequenceGenerator.AF | SequenceGenerator.PF,
        _ => 0,
    };

    /// <summary>CPUID bit -> the feature above that backs it, or a test (by name) for bits that
    /// are not instruction sets.</summary>
    public static readonly (uint Leaf, string Reg, int Bit, string Backing)[] Bits =
    [
        (1, "ecx", 0, "sse3"),
        (1, "ecx", 9, "ssse3"),
        (1, "ecx", 19, "sse4.1"),
        (1, "ecx", 20, "sse4.2"),
        (1, "ecx", 23, "test:Random_register_sequences_leave_the_same_registers_and_flags_as_the_real_cpu"),
        (1, "ecx", 13, "cx16"),
        (1, "ecx", 22, "movbe"),
        (1, "edx", 8, "cx8"),
        (7, "ebx", 3, "bmi1"),
        (7, "ebx", 8, "bmi2"),
        (0x80000001, "ecx", 5, "test:Random_register_sequences_leave_the_same_registers_and_flags_as_the_real_cpu"),
        (1, "ecx", 26, "test:Xsave_and_xrstor_keep_the_x87_and_sse_components_xcr0_enables"),
        (1, "edx", 24, "test:Fxsave_stores_the_legacy_layout_and_fxrstor_brings_it_back"),
        (1, "edx", 0, "test:Leaves_the_same_x87_registers_status_tags_flags_and_memory_as_the_real_cpu"),
        (0xD, "eax", 0, "test:Xsave_and_xrstor_keep_the_x87_and_sse_components_xcr0_enables"),
        (0xD, "eax", 1, "test:Xsave_and_xrstor_keep_the_x87_and_sse_components_xcr0_enables"),
        (1, "ecx", 30, "test:Rdrand_and_rdseed_draw_from_the_seeded_source_and_set_only_cf"),
        (7, "ebx", 18, "test:Rdrand_and_rdseed_draw_from_the_seeded_source_and_set_only_cf"),
        (0x80000001, "edx", 27, "test:Rdtscp_reads_the_tsc_and_tsc_aux"),
        (1, "ecx", 31, "test:Cpuid_says_it_is_a_hypervisor"),
        (1, "edx", 4, "test:Rdtsc_counts_retired_instructions"),
        (1, "edx", 15, "test:Random_register_sequences_leave_the_same_registers_and_flags_as_the_real_cpu"),
        (1, "edx", 25, "sse"),
        (1, "edx", 26, "sse2"),
        (0x80000001, "ecx", 0, "test:Random_register_sequences_leave_the_same_registers_and_flags_as_the_real_cpu"),
        (0x80000001, "edx", 29, "test:The_interpreter_runs_64_bit_code"),
        // The system part (Interpreter.System.cs, SystemTests): paging, MSRs, syscall, NX.
        (1, "edx", 3, "test:Cr3_reload_keeps_global_entries_until_invlpg"),
        (1, "edx", 5, "test:Rdmsr_of_an_unknown_msr_raises_gp_and_the_handler_skips_it"),
        (1, "edx", 6, "test:A_page_fault_handler_maps_the_page_and_the_load_is_retried"),
        (1, "edx", 13, "test:Cr3_reload_keeps_global_entries_until_invlpg"),
        (1, "edx", 16, "test:Cpuid_reports_the_system_features_and_the_apic_only_when_present"),
        (1, "edx", 9, "test:Cpuid_reports_the_system_features_and_the_apic_only_when_present"),
        (0x80000001, "edx", 11, "test:Ring_3_code_runs_after_sysret_and_comes_back_by_syscall"),
        (0x80000001, "edx", 20, "test:Protection_faults_carry_their_error_code"),
        (0x80000001, "edx", 26, "test:Cpuid_reports_the_system_features_and_the_apic_only_when_present"),
    ];
}
