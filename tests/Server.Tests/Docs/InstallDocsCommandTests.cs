using CrmSecurity.Server.Tests.Hosting;

namespace CrmSecurity.Server.Tests.Docs;

/// <summary>
/// The "Verbs in a development checkout" block of docs/install.md, run with bash as written after the first start the
/// block begins with (the <see cref="DevelopmentCheckout"/> fixture: the launch profile's environment, demo data, the
/// generated development key): every verb succeeds on that checkout's data.
/// </summary>
public sealed class InstallDocsCommandTests(DevelopmentCheckout checkout) : IClassFixture<DevelopmentCheckout>
{
    [Fact]
    public async Task The_verbs_of_a_development_checkout_run_as_written_after_the_first_start()
    {
        var lines = DocCommands.Block("install.md", "checkout-verbs-commands").Split('\n');
        // The first line is the first start, which the fixture made; the rest are the verbs.
        Assert.StartsWith("dotnet run --project src/Server ", lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain(" -- ", lines[0], StringComparison.Ordinal);

        var (exit, output) = await DocCommands.RunAsync(string.Join('\n', lines.Skip(1)), checkout.Directory, checkout.Environment);

        Assert.True(exit == 0, output);
        Assert.Contains("Crypto: using the DEVELOPMENT master key", output, StringComparison.Ordinal);
        Assert.Contains("Audit trail intact", output, StringComparison.Ordinal);
        Assert.Contains("--urls", output, StringComparison.Ordinal);
    }
}
