using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace CrmSecurity.Server.Tests.Docs;

/// <summary>
/// Every relative link in README.md and docs/*.md points at a file that exists and, for a link with <c>#anchor</c> into a
/// Markdown page, at a heading of that page (GitHub's anchors: lower case, punctuation dropped, spaces as hyphens, a
/// repeated heading suffixed -1, -2, ...). Moving a section between pages cannot leave a dead link behind.
/// </summary>
public sealed partial class DocsLinksTests
{
    [Fact]
    public void Every_relative_link_in_the_readme_and_docs_points_at_a_file_and_anchor_that_exist()
    {
        var root = RepositoryDocs.Root();
        var pages = RepositoryDocs.Pages(root);

        var problems = pages.SelectMany(page => BrokenLinks(page, root)).ToList();

        Assert.True(pages.Count > 10, $"only {pages.Count} pages found under {root}");
        Assert.True(problems.Count == 0, "Broken links:\n" + string.Join('\n', problems));
    }

    [Fact]
    public void A_link_to_a_missing_file_or_heading_is_reported_and_a_good_one_is_not()
    {
        var root = Directory.CreateTempSubdirectory("crm-docs-links-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(root, "docs"));
            File.WriteAllText(Path.Combine(root, "docs", "a.md"), "# Page A\n\n## Keys instead of a secret (`private_key_jwt`)\n\n## Keys instead of a secret (`private_key_jwt`)\n");
            File.WriteAllText(Path.Combine(root, "README.md"), string.Join('\n',
                "[good](docs/a.md#keys-instead-of-a-secret-private_key_jwt) [second](docs/a.md#keys-instead-of-a-secret-private_key_jwt-1)",
                "[self](#top) [gone](docs/b.md) [bad anchor](docs/a.md#page-b) `[in code](docs/c.md)` [web](https://example.com/x)",
                "# Top",
                "```sh",
                "echo '[in a block](docs/d.md)'",
                "```"));

            var problems = BrokenLinks(Path.Combine(root, "README.md"), root).ToList();

            Assert.Equal(2, problems.Count);
            Assert.Contains(problems, p => p.Contains("docs/b.md: no such file", StringComparison.Ordinal));
            Assert.Contains(problems, p => p.Contains("docs/a.md#page-b: no heading", StringComparison.Ordinal));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static IEnumerable<string> BrokenLinks(string page, string root)
    {
        var name = Path.GetRelativePath(root, page);
        foreach (var (number, text) in OutsideCodeBlocks(page))
        {
            foreach (Match link in Link().Matches(CodeSpan().Replace(text, "")))
            {
                var target = link.Groups["target"].Value;
                if (Scheme().IsMatch(target))
                {
                    continue; // https:, mailto:, ...: not a file of this repository
                }

                var hash = target.IndexOf('#', StringComparison.Ordinal);
                var path = hash < 0 ? target : target[..hash];
                var anchor = hash < 0 ? null : target[(hash + 1)..];
                var file = path.Length == 0 ? page : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(page)!, Uri.UnescapeDataString(path)));
                if (!File.Exists(file) && !Directory.Exists(file))
                {
                    yield return $"{name}:{number}: {target}: no such file";
                }
                else if (anchor is not null && file.EndsWith(".md", StringComparison.Ordinal) && !Anchors(file).Contains(anchor))
                {
                    yield return $"{name}:{number}: {target}: no heading with that anchor in {Path.GetRelativePath(root, file)}";
                }
            }
        }
    }

    /// <summary>The anchors GitHub gives the headings of a Markdown page.</summary>
    private static HashSet<string> Anchors(string page)
    {
        var anchors = new HashSet<string>(StringComparer.Ordinal);
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var line in OutsideCodeBlocks(page))
        {
            var heading = Heading().Match(line.Text);
            if (!heading.Success)
            {
                continue;
            }

            var slug = Slug(heading.Groups["text"].Value);
            var count = seen.GetValueOrDefault(slug);
            seen[slug] = count + 1;
            anchors.Add(count == 0 ? slug : $"{slug}-{count}");
        }

        return anchors;
    }

    private static string Slug(string heading)
    {
        var text = Tag().Replace(heading, "").Trim().ToLowerInvariant();
        var slug = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (c == ' ')
            {
                slug.Append('-');
            }
            else if (c is '-' or '_' || char.IsLetterOrDigit(c) || CharUnicodeInfo.GetUnicodeCategory(c) is UnicodeCategory.NonSpacingMark)
            {
                slug.Append(c);
            }
        }

        return slug.ToString();
    }

    private static IEnumerable<(int Number, string Text)> OutsideCodeBlocks(string page)
    {
        var fenced = false;
        var number = 0;
        foreach (var line in File.ReadLines(page))
        {
            number++;
            if (line.TrimStart().StartsWith("```", StringComparison.Ordinal))
            {
                fenced = !fenced;
                continue;
            }

            if (!fenced)
            {
                yield return (number, line);
            }
        }
    }

    [GeneratedRegex(@"\]\((?<target>[^)\s]+)(?:\s+""[^""]*"")?\)")]
    private static partial Regex Link();

    [GeneratedRegex(@"`[^`]*`")]
    private static partial Regex CodeSpan();

    [GeneratedRegex(@"^[a-zA-Z][a-zA-Z0-9+.-]*:")]
    private static partial Regex Scheme();

    [GeneratedRegex(@"^#{1,6} +(?<text>.*?) *#*$")]
    private static partial Regex Heading();

    [GeneratedRegex(@"<[^>]+>")]
    private static partial Regex Tag();
}
