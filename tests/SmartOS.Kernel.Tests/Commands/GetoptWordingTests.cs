namespace SmartOS.Kernel.Tests.Commands;

/// <summary>Getopt beyond the plain spec: optional values, a leading ':', long options that are
/// also short ones, and getopt_long(3)'s wording for the upstream tools that use it.</summary>
public class GetoptWordingTests
{
    // getopt(3C): with a leading ':' getopt prints nothing and the caller words the error.
    [Test]
    public void A_leading_colon_keeps_the_error_but_prints_nothing()
    {
        var g = Getopt.Parse(["-p"], ":p:c");
        var err = new StringWriter();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(g.ReportError(err, "ipadm"), Is.True);
            Assert.That(err.ToString(), Is.Empty);
            Assert.That((g.Quiet, g.ErrorOption, g.ErrorMissingValue), Is.EqualTo((true, 'p', true)));
            Assert.That(Getopt.Parse(["-:"], ":p:c").ErrorOption, Is.EqualTo(':'));
        }
    }

    [Test]
    public void ReportError_prints_getopts_line_for_the_command_name()
    {
        var err = new StringWriter { NewLine = "\n" };
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Getopt.Parse(["-x"], "p").ReportError(err, "ping"), Is.True);
            Assert.That(Getopt.Parse(["-p"], "p").ReportError(err, "ping"), Is.False);
            Assert.That(err.ToString(), Is.EqualTo("ping: illegal option -- x\n"));
        }
    }

    [Test]
    public void An_optional_value_is_taken_only_when_attached()
    {
        var g = Getopt.Parse(["-dlevel", "-d", "x"], "d::");
        Assert.That((g.Values("d"), g.Operands), Is.EqualTo((new[] { "level", "" }, new List<string> { "x" })));
    }

    [Test]
    public void A_long_option_can_be_a_short_ones_other_name()
    {
        var g = Getopt.ParseLong(["--client", "h", "-p", "1", "--port=2", "--udp"], "c:p:u", ["client:=c", "port:=p", "udp=u"]);
        Assert.That((g.Value("c"), g.Values("p"), g.Has("u")), Is.EqualTo(("h", new[] { "1", "2" }, true)));
    }

    [Test]
    public void An_optional_long_value_is_taken_only_after_an_equals_sign()
    {
        var g = Getopt.ParseLong(["--log", "--log=x", "y"], "", ["log::"]);
        Assert.That((g.Values("log"), g.Operands), Is.EqualTo((new[] { "", "x" }, new List<string> { "y" })));
    }

    // getopt(3C) wording for long options (illumos getopt names the long option in the same words).
    [TestCase(new[] { "--nope" }, "illegal option -- nope")]
    [TestCase(new[] { "--seed" }, "option requires an argument -- seed")]
    [TestCase(new[] { "--flag=1" }, "option doesn't take an argument -- flag")]
    public void Long_option_errors_in_getopts_words(string[] args, string error)
        => Assert.That(Getopt.Parse(args, "", ["seed:", "flag"]).Error, Is.EqualTo(error));

    // getopt_long(3) as glibc words it (what iperf3 prints before its usage on Linux).
    [TestCase(new[] { "-x" }, "invalid option -- 'x'", 'x', null)]
    [TestCase(new[] { "-p" }, "option requires an argument -- 'p'", 'p', null)]
    [TestCase(new[] { "--nope" }, "unrecognized option '--nope'", '\0', "nope")]
    [TestCase(new[] { "--port" }, "option '--port' requires an argument", '\0', "port")]
    [TestCase(new[] { "--udp=1" }, "option '--udp' doesn't allow an argument", '\0', "udp")]
    public void Getopt_long_errors_in_its_own_words(string[] args, string error, char option, string? longName)
    {
        var g = Getopt.ParseLong(args, "p:u", ["port:=p", "udp=u"]);
        Assert.That((g.Error, g.ErrorOption, g.ErrorLongOption), Is.EqualTo((error, option, longName)));
    }

    [Test]
    public void A_lone_dash_is_an_operand_and_a_value_may_start_with_a_dash()
    {
        var g = Getopt.Parse(["-o", "-p", "-"], "o:p");
        Assert.That((g.Value("o"), g.Has("p"), g.Operands), Is.EqualTo(("-p", false, new List<string> { "-" })));
    }
}
