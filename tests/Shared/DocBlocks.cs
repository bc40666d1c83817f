namespace CrmSecurity.Tests.Support;

/// <summary>
/// The repository's docs (README.md and docs/, found above the test assembly) and their command blocks: the
/// <c>```sh</c> fence right after a marker comment (<c>&lt;!-- NAME: which test runs it --&gt;</c>), as the docs tests run it.
/// </summary>
internal static class DocBlocks
{
    public static string Root()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "README.md")) && Directory.Exists(Path.Combine(directory.FullName, "docs")))
            {
                return directory.FullName;
            }
        }

        throw new DirectoryNotFoundException("README.md and docs/ were not found above the test's directory.");
    }

    /// <summary>The lines of the sh block after <c>&lt;!-- <paramref name="marker"/>:</c> in docs/<paramref name="page"/>.</summary>
    public static string Block(string page, string marker)
    {
        var lines = File.ReadAllLines(Path.Combine(Root(), "docs", page));
        var start = Array.FindIndex(lines, line => line.StartsWith($"<!-- {marker}:", StringComparison.Ordinal));
        Assert.True(start >= 0 && start + 1 < lines.Length && lines[start + 1] == "```sh", $"docs/{page} has no sh block after a <!-- {marker}: --> marker");
        return string.Join('\n', lines.Skip(start + 2).TakeWhile(line => line != "```"));
    }
}
