using System.Diagnostics;
using System.Text;
using CrmSecurity.Tests.Support;

namespace CrmSecurity.Crypto.Tests.Support;

/// <summary>A verb of the real service executable that a test can kill at any moment, as a crash or an OOM kill would.</summary>
public sealed class VerbProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private VerbProcess(Process process) => _process = process;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Starts the verb; with <paramref name="input"/> its standard input is that text and then closed (as an operator typing it).</summary>
    public static VerbProcess Start(IReadOnlyList<string> arguments, IReadOnlyDictionary<string, string?> environment, string workingDirectory, string? input = null)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = input is not null,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        start.ArgumentList.Add(ServerProcess.ServerAssembly);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["DOTNET_ENVIRONMENT"] = "Testing";
        start.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var process = new Process { StartInfo = start };
        var verb = new VerbProcess(process);
        process.OutputDataReceived += (_, e) => verb.Append(e.Data);
        process.ErrorDataReceived += (_, e) => verb.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (input is not null)
        {
            process.StandardInput.Write(input);
            process.StandardInput.Close();
        }

        return verb;
    }

    public bool HasExited => _process.HasExited;

    /// <summary>Waits for the verb to end; its exit code and everything it wrote.</summary>
    public async Task<(int ExitCode, string Output)> WaitAsync(CancellationToken cancellationToken)
    {
        await _process.WaitForExitAsync(cancellationToken);
        _process.WaitForExit(); // flushes the asynchronous output readers
        return (_process.ExitCode, Output);
    }

    public int ExitCode => _process.ExitCode;

    /// <summary>Kills the process at once (SIGKILL), as a crash or an OOM kill would.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        await _process.WaitForExitAsync(CancellationToken.None);
    }

    /// <summary>Waits up to <paramref name="wait"/>; kills the process if it is still running then. Returns its exit code, or null when it was killed.</summary>
    public async Task<int?> KillAfterAsync(TimeSpan wait, CancellationToken cancellationToken)
    {
        using var timer = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timer.CancelAfter(wait);
        try
        {
            await _process.WaitForExitAsync(timer.Token);
            _process.WaitForExit();
            return _process.ExitCode;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync(CancellationToken.None);
            return null;
        }
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }
        }
    }
}
