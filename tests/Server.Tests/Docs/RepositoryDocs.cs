using CrmSecurity.Tests.Support;

namespace CrmSecurity.Server.Tests.Docs;

/// <summary>The repository's README.md and docs/ folder, found above the test's directory.</summary>
internal static class RepositoryDocs
{
    public static string Root() => DocBlocks.Root();

    /// <summary>README.md and every page in docs/ (not below it: docs/ has no subfolders of pages).</summary>
    public static IReadOnlyList<string> Pages(string root) =>
        [Path.Combine(root, "README.md"), .. Directory.GetFiles(Path.Combine(root, "docs"), "*.md").Order(StringComparer.Ordinal)];
}
