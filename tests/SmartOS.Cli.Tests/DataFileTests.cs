using SmartOS.Testing;

namespace SmartOS.Cli.Tests;

/// <summary>The data-file reader the table tests share (tests/Shared/DataFile.cs): a line it cannot
/// read becomes a case that fails naming file:line, never a case silently dropped.</summary>
public class DataFileTests
{
    private string _path = "";

    [SetUp]
    public void MakeFile() => _path = Path.GetTempFileName();

    [TearDown]
    public void RemoveFile() => File.Delete(_path);

    private List<DataCase> Read(string text, int fields)
    {
        File.WriteAllText(_path, text);
        return DataFile.Read(_path, "t.txt", fields, fields).ToList();
    }

    private static string FailureOf(TestDelegate read)
        => Assert.Throws<AssertionException>(read)!.Message;

    [Test]
    public void Comments_and_blank_lines_are_skipped_and_fields_are_trimmed()
    {
        var cases = Read("# what these check\n\n  a | b  \n   # indented comment\nc|d\n", 2);
        Assert.That(cases.Select(c => (c.Line, c[0], c[1])), Is.EqualTo(new[] { (3, "a", "b"), (5, "c", "d") }));
    }

    [Test]
    public void Escapes_and_quotes_keep_bars_newlines_and_spaces()
    {
        var c = Read("# x\ntcp \\|\\| udp | \"  1   0.5 \" | a\\nb\\t\\\"q\\\"\\\\\n", 3).Single();
        Assert.That((c[0], c[1], c[2]), Is.EqualTo(("tcp || udp", "  1   0.5 ", "a\nb\t\"q\"\\")));
    }

    [Test]
    public void A_line_with_the_wrong_number_of_fields_fails_naming_file_and_line()
    {
        var cases = Read("# x\na | b\na | b | c\n", 2);
        Assert.That(cases, Has.Count.EqualTo(2));
        Assert.That(FailureOf(() => _ = cases[1][0]), Does.Contain("t.txt:3: 3 fields, expected 2 separated by '|'"));
    }

    [TestCase("# x\na\\q | b\n", "t.txt:2: unknown escape '\\q'")]
    [TestCase("# x\n\"a | b\n", "t.txt:2: a quoted field is not closed")]
    [TestCase("# x\na\"b | c\n", "t.txt:2: a quote inside field")]
    [TestCase("a | b\n", "t.txt:1: the file must open with a comment")]
    public void A_malformed_line_fails_naming_file_and_line(string text, string message)
        => Assert.That(FailureOf(() => _ = Read(text, 2)[0][0]), Does.Contain(message));

    [Test]
    public void A_field_that_is_not_what_the_test_reads_fails_naming_file_and_line()
    {
        var c = Read("# x\nmaybe | 12x\n", 2).Single();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(FailureOf(() => c.Bool(0)), Does.Contain("t.txt:2: field 1 'maybe' is not yes or no"));
            Assert.That(FailureOf(() => c.Int(1)), Does.Contain("t.txt:2: field 2 '12x' is not a number"));
        }
    }

    [Test]
    public void A_missing_file_is_one_failing_case()
    {
        var cases = DataFile.Cases("no-such-file.txt", 1).ToList();
        Assert.That(cases, Has.Count.EqualTo(1));
        Assert.That(FailureOf(() => _ = ((DataCase)cases[0].Arguments[0]!)[0]), Does.Contain("no-such-file.txt: no such data file"));
    }
}
