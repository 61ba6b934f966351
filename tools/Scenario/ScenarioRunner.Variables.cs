using System.Text.RegularExpressions;

namespace SmartOS.Cli.Scenario;

/// <summary>
/// Names a scenario takes from outside it: files that are not in the repository and differ between
/// machines (a Linux kernel built by virt/guests/linux/build.sh), so the script cannot spell them.
///
/// Rules
///   1. $SCENARIO_DIR at the start of a command's word is the directory holding the scenario file.
///   2. $NAME or ${NAME} (NAME in capitals, digits and '_') at the start of a command's word, or
///      anywhere in a here-document's lines, is the environment variable NAME, as a shell reads it:
///      SMARTOS_LINUX_GUEST=/var/tmp/linux smartos run examples/linux-vm.scn. $SCENARIO_DIR is
///      rule 1's in here-documents too.
///   3. A variable that is not set is the scenario's error at that line, naming it: nothing runs
///      with a path that silently lost its directory.
///   4. The transcript shows each line as written, so it reads the same on every machine; only
///      what the commands do with the files may differ, and the scenario decides what to print.
/// </summary>
public sealed partial class ScenarioRunner
{
    [GeneratedRegex(@"\$(?:\{([A-Z_][A-Z0-9_]*)\}|([A-Z_][A-Z0-9_]*))")]
    private static partial Regex Variable();

    /// <summary>A command's word with a leading variable replaced (rules 1 and 2).</summary>
    private string ExpandWord(string word)
    {
        if (!word.StartsWith('$')) return word;
        var m = Variable().Match(word);
        if (!m.Success || m.Index != 0) return word;
        return Value(m) + word[m.Length..];
    }

    /// <summary>A here-document's text with every variable replaced (rule 2).</summary>
    private string ExpandHereDocument(string text)
        => text.Contains('$') ? Variable().Replace(text, Value) : text;

    private string Value(Match m)
    {
        string name = m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value;
        if (name == ScenarioDirWord[1..]) return _scenarioDir;
        string? value = Environment.GetEnvironmentVariable(name);
        if (string.IsNullOrEmpty(value)) throw new ScenarioError($"${name} is not set in the environment (the scenario names files by it)");
        return value;
    }
}
