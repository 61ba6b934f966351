using SmartOS.Dtrace;
using SmartOS.Cli.Tests.Commands;

namespace SmartOS.Cli.Tests.Dtrace;

/// <summary>
/// The D language as `dtrace -n` runs it on a host: errors with dtrace's wording (dt_grammar.y's
/// yyerror "syntax error near", dt_cc.c's "failed to resolve", dt_printf.c's prototype checks),
/// expression semantics, printf's conversions, and a run-time fault that is reported and survived.
/// </summary>
public class DtraceLanguageTests
{
    private static CommandResult D(params string[] args)
    {
        var h = CliHost.TwoVnicsOnAStub();
        return h.Run(["dtrace", .. args]);
    }

    [TestCase("BEGIN { x = ; }", "syntax error near \";\"")]
    [TestCase("BEGIN { trace(1) trace(2); }", "syntax error near \"trace\"")]
    [TestCase("BEGIN { trace(y); }", "failed to resolve y: Unknown variable name")]
    [TestCase("BEGIN { trace(this->v); }", "failed to resolve this->v: Unknown variable name")]
    [TestCase("BEGIN { x = nosuch(1); }", "failed to resolve nosuch: Unknown function name")]
    [TestCase("mac:::nosuch { }", "probe description mac:::nosuch does not match any probes")]
    [TestCase("nosuch { }", "probe description :::nosuch does not match any probes")]
    [TestCase("a:b:c:d:e { }", "invalid probe description \"a:b:c:d:e\": Overspecified probe description")]
    [TestCase("BEGIN { x = \"s\"; x = 1; }", "operator = operands have incompatible types: \"string\" = \"int64_t\"")]
    [TestCase("BEGIN { printf(\"%d\\n\", \"s\"); }", "printf( ) argument #2 is incompatible with conversion #1 prototype:\n\tconversion: %d\n\t prototype: char, short, int, long, long long, ...\n\t  argument: string")]
    [TestCase("BEGIN { printf(\"%d %d\\n\", 1); }", "printf( ) prototype mismatch: conversion #2 (%d) is missing a corresponding value argument")]
    [TestCase("BEGIN { printf(\"%d\\n\", 1, 2); }", "printf( ) prototype mismatch: only 1 arguments required by this format string")]
    [TestCase("BEGIN { @a = count(1); }", "count( ) prototype mismatch: 1 arg passed, 0 expected")]
    [TestCase("BEGIN { @a = lquantize(1, 0); }", "lquantize( ) prototype mismatch: 2 args passed, at least 4 expected")]
    [TestCase("BEGIN { trace(1, 2); }", "trace( ) prototype mismatch: 2 args passed, 1 expected")]
    [TestCase("BEGIN { @a = lquantize(1, 10, 0, 1); }", "lquantize( ) upper bound must be greater than lower bound")]
    [TestCase("BEGIN { printa(@nosuch); }", "failed to resolve @nosuch: Unknown variable name")]
    public void A_bad_program_given_with_n_is_an_invalid_probe_specifier(string program, string message)
    {
        var r = D("-n", program);
        Assert.That((r.ExitCode, r.Stderr, r.Stdout), Is.EqualTo((1, $"dtrace: invalid probe specifier {program}: {message}\n", "")));
    }

    [Test]
    public void A_bad_script_names_its_file_and_line()
    {
        var h = CliHost.TwoVnicsOnAStub();
        string dir = Directory.CreateTempSubdirectory("dtrace-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "bad.d"), "BEGIN\n{\n\tx = 1 +;\n}\n");
            var r = Dispatcher.Run(h.World, h.Host, ["dtrace", "-s", "bad.d"], (string?)null, workingDirectory: dir);
            Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((1, "dtrace: failed to compile script bad.d: line 3: syntax error near \";\"\n")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [TestCase("BEGIN { x = ; }", 1, 13)]
    [TestCase("BEGIN\n{\n  trace(1)\n  exit(0);\n}", 4, 3)]
    [TestCase("BEGIN /* never closed", 1, 7)]
    [TestCase("BEGIN { trace(\"no end); }", 1, 15)]
    [TestCase("BEGIN { x = 1", 1, 14)]
    public void A_syntax_error_has_the_line_and_column_of_the_token_it_is_near(string program, int line, int column)
    {
        var e = Assert.Throws<DCompileError>(() => DProgram.Parse(program));
        Assert.That((e.Line, e.Column), Is.EqualTo((line, column)), e.Message);
    }

    [Test]
    public void The_lexer_words_its_errors_as_dt_lex_does()
    {
        Assert.That(Assert.Throws<DCompileError>(() => DProgram.Parse("BEGIN /* x")).Message, Is.EqualTo("end-of-file encountered before matching */"));
        Assert.That(Assert.Throws<DCompileError>(() => DProgram.Parse("BEGIN { trace(\"x); }")).Message, Is.EqualTo("newline encountered in string literal"));
        Assert.That(Assert.Throws<DCompileError>(() => DProgram.Parse("BEGIN { x = 1")).Message, Is.EqualTo("syntax error near end of input"));
        Assert.That(Assert.Throws<DCompileError>(() => DProgram.Parse("BEGIN { x = 09; }")).Message, Is.EqualTo("invalid digit in constant \"09\""));
        Assert.That(() => DProgram.Parse("BEGIN, END /x/ { x = 0x1f + 017 + 'a'; }"), Throws.Nothing);
    }

    [TestCase("7 / 2", "3")]
    [TestCase("-7 / 2", "-3")]
    [TestCase("-7 % 3", "-1")]
    [TestCase("1 << 40", "1099511627776")]
    [TestCase("-16 >> 2", "-4")]
    [TestCase("2 + 3 * 4 - 1", "13")]
    [TestCase("(2 + 3) * 4", "20")]
    [TestCase("0x10 | 017 ^ 1", "30")]
    [TestCase("~0", "-1")]
    [TestCase("!5 + !0", "1")]
    [TestCase("3 > 2 && 2 > 1", "1")]
    [TestCase("0 || 0", "0")]
    [TestCase("1 ^^ 1", "0")]
    [TestCase("5 >= 5 ? 10 : 20", "10")]
    [TestCase("\"abc\" == \"abc\"", "1")]
    [TestCase("\"abc\" < \"abd\"", "1")]
    [TestCase("9223372036854775807 + 1", "-9223372036854775808")]
    [TestCase("'A'", "65")]
    public void Integer_expressions_follow_D(string expr, string value)
    {
        var r = D("-q", "-n", $"BEGIN {{ printf(\"%d\", {expr}); exit(0); }}");
        Assert.That((r.ExitCode, r.Stdout), Is.EqualTo((0, value + "\n")), r.Stderr);
    }

    [Test]
    public void Variables_globals_clause_locals_and_associative_arrays_keep_their_values()
    {
        var r = D("-q", "-n",
            "BEGIN { x = 10; x += 5; x++; ++x; x -= 1; s = \"str\"; this->y = x * 2; a[\"k\", 1] = 3; a[\"k\", 1] += 4; } " +
            "BEGIN { printf(\"%d %s %d %d %d %d\\n\", x, s, this->y, a[\"k\", 1], a[\"none\", 0], strlen(s)); exit(0); }");
        // this-> is clause-local: the second clause's this->y is a new, zeroed variable.
        Assert.That(r.Stderr, Is.EqualTo("dtrace: invalid probe specifier BEGIN { x = 10; x += 5; x++; ++x; x -= 1; s = \"str\"; this->y = x * 2; a[\"k\", 1] = 3; a[\"k\", 1] += 4; } BEGIN { printf(\"%d %s %d %d %d %d\\n\", x, s, this->y, a[\"k\", 1], a[\"none\", 0], strlen(s)); exit(0); }: failed to resolve this->y: Unknown variable name\n"));
        r = D("-q", "-n",
            "BEGIN { x = 10; x += 5; x++; ++x; x -= 1; s = \"str\"; this->y = x * 2; a[\"k\", 1] = 3; a[\"k\", 1] += 4; " +
            "printf(\"%d %s %d %d %d %d\\n\", x, s, this->y, a[\"k\", 1], a[\"none\", 0], strlen(s)); exit(0); }");
        Assert.That((r.ExitCode, r.Stdout), Is.EqualTo((0, "16 str 32 7 0 3\n\n")), r.Stderr);
    }

    [Test]
    public void Printf_formats_as_dtrace_does()
    {
        var r = D("-q", "-n", "BEGIN { printf(\"[%5d|%-5d|%05d|%+d|%x|%X|%#x|%o|%#o|%u|%s|%-4s|%4s|%.2s|%c|%%|%ld|%.3d]\\n\", " +
            "42, 42, 42, 7, 255, 255, 255, 8, 8, -1, \"str\", \"ab\", \"ab\", \"abcdef\", 65, 1, 5); exit(0); }");
        Assert.That(r.Stdout, Is.EqualTo("[   42|42   |00042|+7|ff|FF|0xff|10|010|18446744073709551615|str|ab  |  ab|ab|A|%|1|005]\n\n"), r.Stderr);
    }

    [Test]
    public void Without_q_each_record_has_the_cpu_id_and_function_name_columns()
    {
        var r = D("-n", "BEGIN { trace(1); trace(\"s\"); exit(0); }");
        Assert.That(r.ExitCode, Is.Zero);
        Assert.That(r.Stderr, Is.EqualTo("dtrace: description 'BEGIN ' matched 1 probe\n"));
        Assert.That(r.Stdout, Is.EqualTo(
            "CPU     ID                    FUNCTION:NAME\n" +
            "  0      1                           :BEGIN                 1  s                                \n" +
            "\n"));
    }

    [Test]
    public void A_clause_without_statements_records_its_probe_as_the_default_action()
    {
        var r = D("-n", "BEGIN", "-n", "BEGIN { exit(0); }");
        Assert.That(r.Stderr, Is.EqualTo("dtrace: description 'BEGIN' matched 1 probe\ndtrace: description 'BEGIN ' matched 1 probe\n"));
        Assert.That(r.Stdout, Is.EqualTo(
            "CPU     ID                    FUNCTION:NAME\n" +
            "  0      1                           :BEGIN \n" +
            "  0      1                           :BEGIN \n" +
            "\n"));
    }

    [Test]
    public void Division_by_zero_is_reported_and_tracing_goes_on()
    {
        var r = D("-q", "-n", "BEGIN { z = 0; } BEGIN { printf(\"lost\"); trace(1 / z); } BEGIN { printf(\"after\\n\"); exit(0); }");
        Assert.That(r.ExitCode, Is.Zero);
        // The faulting clause's record is discarded whole, as dtrace discards the ECB's data.
        Assert.That(r.Stdout, Is.EqualTo("after\n\n"));
        Assert.That(r.Stderr, Is.EqualTo("dtrace: error on enabled probe ID 2 (ID 1: dtrace:::BEGIN): divide-by-zero in action #2 at DIF offset 0\n"));
    }

    [Test]
    public void A_fault_in_a_predicate_says_so()
    {
        var r = D("-q", "-n", "BEGIN { z = 0; } BEGIN / 1 + 10 % z / { printf(\"never\"); } END { printf(\"end\\n\"); } BEGIN { exit(0); }");
        Assert.That(r.Stdout, Is.EqualTo("end\n\n"));
        Assert.That(r.Stderr, Is.EqualTo("dtrace: error on enabled probe ID 2 (ID 1: dtrace:::BEGIN): divide-by-zero in predicate at DIF offset 0\n"));
    }

    [Test]
    public void The_error_probe_fires_with_the_epid_action_dif_offset_and_fault()
    {
        var r = D("-q", "-n", "BEGIN { z = 0; } BEGIN { x = 1; y = 2 + 3 / z; } ERROR { printf(\"%d %d %d %d %d\\n\", arg0, arg1, arg2, arg3, arg4); } BEGIN { exit(0); }");
        Assert.That(r.Stdout, Is.EqualTo("0 2 2 0 4\n\n"));
        Assert.That(r.Stderr, Is.EqualTo("dtrace: error on enabled probe ID 2 (ID 1: dtrace:::BEGIN): divide-by-zero in action #2 at DIF offset 0\n"));
    }

    [Test]
    public void Options_dtrace_has_but_this_one_does_not_honour_are_refused()
    {
        Assert.That(D("-x", "flowindent", "-n", "BEGIN { exit(0); }").Stderr, Does.StartWith("dtrace: failed to set -x flowindent: option is not supported yet\n"));
        Assert.That(D("-x", "nosuch", "-n", "BEGIN { exit(0); }").Stderr, Does.StartWith("dtrace: failed to set -x nosuch: Invalid option name\n"));
        Assert.That(D("-x", "quiet", "-n", "BEGIN { printf(\"q\"); exit(0); }").Stdout, Is.EqualTo("q\n"));
        Assert.That(D().ExitCode, Is.EqualTo(2));
    }
}
