namespace SmartOS.Kernel.Tests.Commands;

/// <summary>Getopt: getopt(3C)'s option syntax and its error wording.</summary>
public class GetoptTests
{
    [Test]
    public void Combined_flags_attached_and_separate_values_are_all_read()
    {
        var g = Getopt.Parse(["-pt", "-ofoo", "-d", "bar", "x"], "ptd:o:");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(g.Error, Is.Null);
            Assert.That(g.Has("p") && g.Has("t"), Is.True);
            Assert.That(g.Value("o"), Is.EqualTo("foo"));
            Assert.That(g.Value("d"), Is.EqualTo("bar"));
            Assert.That(g.Operands, Is.EqualTo(new[] { "x" }));
        }
    }

    [Test]
    public void Options_end_at_the_first_operand_unless_permuting_and_at_double_dash()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Getopt.Parse(["a", "-p"], "p").Operands, Is.EqualTo(new[] { "a", "-p" }));
            Assert.That(Getopt.Parse(["a", "-p"], "p", permute: true).Has("p"), Is.True);
            Assert.That(Getopt.Parse(["--", "-p"], "p").Operands, Is.EqualTo(new[] { "-p" }));
        }
    }

    [Test]
    public void Repeated_options_keep_every_value()
    {
        var g = Getopt.Parse(["-o", "a", "-o", "b"], "o:");
        Assert.That((g.Values("o"), g.Value("o")), Is.EqualTo((new[] { "a", "b" }, "b")));
    }

    [Test]
    public void Long_options_take_a_value_after_an_equals_sign_or_as_the_next_argument()
    {
        var g = Getopt.Parse(["--dst=1.2.3.4", "--src", "5.6.7.8"], "", ["dst:", "src:"]);
        Assert.That((g.Value("dst"), g.Value("src")), Is.EqualTo(("1.2.3.4", "5.6.7.8")));
    }

    [Test]
    public void An_unknown_option_is_getopts_illegal_option()
    {
        var g = Getopt.Parse(["-x"], "p");
        Assert.That((g.Error, g.ErrorOption, g.ErrorMissingValue), Is.EqualTo(("illegal option -- x", 'x', false)));
    }

    [Test]
    public void A_missing_value_is_getopts_option_requires_an_argument()
    {
        var g = Getopt.Parse(["-o"], "o:");
        Assert.That((g.Error, g.ErrorOption, g.ErrorMissingValue), Is.EqualTo(("option requires an argument -- o", 'o', true)));
    }
}
