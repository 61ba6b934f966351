namespace SmartOS.Dtrace;

/// <summary>A parsed D program (its clauses), as the dtrace command hands it to a
/// <see cref="Consumer"/>: the syntax tree stays inside this assembly.</summary>
public sealed class DProgram
{
    internal List<Clause> Clauses { get; }

    private DProgram(List<Clause> clauses) => Clauses = clauses;

    /// <summary>Parses program text; a syntax error is a <see cref="DCompileError"/> with its line
    /// and column.</summary>
    public static DProgram Parse(string text) => new(Parser.Parse(text));
}
