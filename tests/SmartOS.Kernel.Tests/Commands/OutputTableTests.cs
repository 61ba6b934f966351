namespace SmartOS.Kernel.Tests.Commands;

/// <summary>OutputTable: libofmt's human-readable and parsable output, and ofmt_open's checks.</summary>
public class OutputTableTests
{
    private static Dictionary<string, string> Row(params (string Field, string Value)[] values)
        => values.ToDictionary(v => v.Field, v => v.Value);

    [Test]
    public void A_value_wider_than_its_field_pushes_the_next_field_and_its_padding_takes_the_excess_back()
    {
        var t = new OutputTable(new("A", 5), new("B", 5), new("C", 3));
        Assert.That(t.Format([Row(("A", "abcdefg"), ("B", "x"), ("C", "z"))], parsable: false),
            Is.EqualTo("A    B    C\nabcdefg x z\n"));
    }

    [Test]
    public void Right_justified_fields_are_padded_on_the_left_with_a_space_after_each()
    {
        var t = new OutputTable(new("N", 4), new("V", 6)) { RightJustify = true };
        Assert.That(t.Format([Row(("N", "ab"), ("V", "12"))], parsable: false),
            Is.EqualTo("   N      V\n  ab     12\n"));
    }

    [Test]
    public void An_empty_value_prints_as_two_dashes()
    {
        var t = new OutputTable(new("A", 4), new("B", 4));
        Assert.That(t.Format([Row(("A", ""), ("B", "b"))], parsable: false), Is.EqualTo("A   B\n--  b\n"));
    }

    [Test]
    public void No_rows_print_nothing_not_even_the_header()
    {
        var t = new OutputTable(new OutputTable.Field("A", 4));
        Assert.That(t.Format([], parsable: false), Is.Empty);
    }

    [Test]
    public void The_header_comes_again_every_24_lines()
    {
        var t = new OutputTable(new OutputTable.Field("N", 4));
        var rows = Enumerable.Range(1, 47).Select(i => Row(("N", i.ToString(System.Globalization.CultureInfo.InvariantCulture))));
        string[] lines = t.Format(rows, parsable: false).TrimEnd('\n').Split('\n');
        var headers = Enumerable.Range(0, lines.Length).Where(i => lines[i] == "N").ToArray();
        Assert.That(headers, Is.EqualTo(new[] { 0, 24, 48 }));
    }

    [Test]
    public void Parsable_output_escapes_colons_and_backslashes_only_when_several_fields_are_printed()
    {
        var t = new OutputTable(new("A", 4), new("B", 4));
        Assert.That(t.Open("a,b", parsable: true), Is.EqualTo(((string?)null, (string?)null)));
        Assert.That(t.Format([Row(("A", "x:y"), ("B", "c\\d"))], parsable: true), Is.EqualTo("x\\:y:c\\\\d\n"));
        t.Open("a", parsable: true);
        Assert.That(t.Format([Row(("A", "x:y"), ("B", "c"))], parsable: true), Is.EqualTo("x:y\n"));
    }

    [TestCase(null, true, "output fields must be specified in parsable mode", null)]
    [TestCase("all", true, "output field `all' invalid in parsable mode", null)]
    [TestCase("a,bogus", false, null, "ignoring unknown output field: `bogus'")]
    [TestCase("a,bogus,nope", false, null, "ignoring unknown output fields: `bogus' `nope'")]
    [TestCase("a,bogus,nope", true, "unknown output fields: `bogus' `nope'", null)]
    [TestCase("bogus", false, "no valid output fields", null)]
    public void Open_words_its_refusals_as_ofmt_strerror_does(string? spec, bool parsable, string? fatal, string? warning)
    {
        var t = new OutputTable(new("A", 4), new("B", 4));
        Assert.That(t.Open(spec, parsable), Is.EqualTo((fatal, warning)));
    }

    [Test]
    public void Open_selects_fields_case_insensitively_in_the_order_given()
    {
        var t = new OutputTable(new("A", 4), new("B", 4));
        t.Open("B,a", parsable: false);
        Assert.That(t.Selected.Select(f => f.Name), Is.EqualTo(new[] { "B", "A" }));
    }
}
