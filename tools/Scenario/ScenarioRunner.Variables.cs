using System.Text.RegularExpressions;

namespace SmartOS.Cli.Scenario;

/// <summary>
/// Names a scenario takes from outside it: files that are not in the repository and differ between
/// machines (a Linux kernel built by virt/guests/linux/build.sh), so the script cannot spell them.
///
/// Rules
///   1. $SCENARIO_DIR (or ${SCENARIO_DIR}) anywhere in a command's word is the directory holding the
///      scenario file, so a path can follow a property's '=' as a shell would expand it:
///      -p files/config=$SCENARIO_DIR/red.json.
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

    [GeneratedRegex(@"\$(?:\{SCENARIO_DIR\}|SCENARIO_DIR(?![A-Z0-9_]))")]
    private static partial Regex ScenarioDirVariable();

    /// <summary>A command's word with a leading variable and every $SCENARIO_DIR replaced (rules 1
    /// and 2). Other variables stay start-of-word only: a '$' inside a word is often the command's
    /// own (a D program's $target, a regular expression's anchor).</summary>
    private string ExpandWord(string word)
    {
        int dollar = word.IndexOf('$');
        if (dollar < 0) return word;
        if (dollar == 0)
        {
            var m = Variable().Match(word);
            if (m.Success && m.Index == 0) word = Value(m) + word[m.Length..];
        }
        return word.Contains(ScenarioDirWord, StringComparison.Ordinal) || word.Contains("${SCENARIO_DIR}", StringComparison.Ordinal)
            ? ScenarioDirVariable().Replace(word, _scenarioDir) : word;
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
