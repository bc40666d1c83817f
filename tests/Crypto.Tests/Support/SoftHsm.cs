using System.Diagnostics;

namespace CrmSecurity.Crypto.Tests.Support;

/// <summary>
/// A real SoftHSM2 token for the tests, initialised once per test run in the private token directory that
/// scripts/test.sh points SOFTHSM2_CONF at. The token is made with softhsm2-util before this process loads the
/// module (a loaded module does not see tokens made later); tests tell their keys apart by label.
/// </summary>
public static class SoftHsm
{
    public const string ModuleVariable = "CRM_SECURITY_TEST_PKCS11_MODULE";
    public const string Pin = "4711-crm-tests";
    public const string SoPin = "so-4711-crm-tests";

    private static readonly Lazy<string> Token = new(Initialise, LazyThreadSafetyMode.ExecutionAndPublication);

    public static string ModulePath =>
        Environment.GetEnvironmentVariable(ModuleVariable) is { Length: > 0 } module
            ? module
            : throw new InvalidOperationException($"PKCS#11 tests need {ModuleVariable} (and SOFTHSM2_CONF); run them with scripts/test.sh.");

    /// <summary>Label of the token initialised for this run.</summary>
    public static string TokenLabel => Token.Value;

    /// <summary>Initialises one more token (for processes started after this one loaded the module).</summary>
    public static string InitialiseToken()
    {
        var label = "crm-" + Guid.NewGuid().ToString("N")[..12];
        var start = new ProcessStartInfo("softhsm2-util")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "--init-token", "--free", "--label", label, "--so-pin", SoPin, "--pin", Pin })
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode == 0 ? label : throw new InvalidOperationException($"softhsm2-util failed ({process.ExitCode}): {output}");
    }

    private static string Initialise()
    {
        _ = ModulePath;
        return Environment.GetEnvironmentVariable("SOFTHSM2_CONF") is { Length: > 0 }
            ? InitialiseToken()
            : throw new InvalidOperationException("SOFTHSM2_CONF is not set; run the tests with scripts/test.sh so tokens go to a private directory.");
    }
}
