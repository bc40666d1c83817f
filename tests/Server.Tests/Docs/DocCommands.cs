using System.Diagnostics;
using CrmSecurity.Tests.Support;

namespace CrmSecurity.Server.Tests.Docs;

/// <summary>
/// A command block of a docs page, found by the marker comment above it (<c>&lt;!-- NAME: ... --&gt;</c> then a
/// <c>```sh</c> fence), run with bash as written. <c>dotnet run --project src/Server [...] -- VERB ...</c> in the block
/// runs the built service next to the test assembly (what <c>dotnet run</c> would build), so the verbs are the real ones.
/// </summary>
internal static class DocCommands
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    // `dotnet run ... -- ARGS` becomes `dotnet CrmSecurity.Server.dll ARGS`; any other dotnet command is left alone.
    private const string Prelude = """
        dotnet() {
          if [ "$1" = run ]; then
            while [ $# -gt 0 ] && [ "$1" != "--" ]; do shift; done
            [ $# -gt 0 ] && shift
            command dotnet "$CRM_SECURITY_SERVER_DLL" "$@"
          else
            command dotnet "$@"
          fi
        }

        """;

    /// <summary>The lines of the sh block after <c>&lt;!-- <paramref name="marker"/>:</c> in docs/<paramref name="page"/>.</summary>
    public static string Block(string page, string marker) => DocBlocks.Block(page, marker);

    /// <summary>
    /// Runs <paramref name="script"/> with <c>bash -euo pipefail</c> in <paramref name="directory"/>; stdout and stderr together.
    /// The verbs run in the Testing environment unless <paramref name="environment"/> says otherwise (null unsets a variable).
    /// </summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(string script, string directory, IReadOnlyDictionary<string, string?>? environment = null)
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = directory };
        foreach (var argument in new[] { "-euo", "pipefail", "-c", Prelude + script })
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["CRM_SECURITY_SERVER_DLL"] = Path.Combine(AppContext.BaseDirectory, "CrmSecurity.Server.dll");
        ServerProcess.SetTestingEnvironment(start, environment);

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(Cancel);
        var errors = process.StandardError.ReadToEndAsync(Cancel);
        await process.WaitForExitAsync(Cancel);
        return (process.ExitCode, await output + await errors);
    }

    /// <summary>A fresh folder for a block's files, deleted by the caller.</summary>
    public static string TemporaryDirectory()
    {
        var directory = Path.Combine(Path.GetTempPath(), "docs-commands-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        return directory;
    }
}
