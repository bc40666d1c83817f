using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace CrmSecurity.Tests.Support;

/// <summary>
/// The real service executable started as its own process on a free loopback port, exactly as an operator
/// runs it. Use it where the whole process matters: start-up, exit codes, being killed.
/// </summary>
public sealed partial class ServerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource<Uri> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ServerProcess(Process process) => _process = process;

    public Uri BaseAddress => _listening.Task.IsCompletedSuccessfully ? _listening.Task.Result : throw new InvalidOperationException("The server is not listening.");

    /// <summary>Everything the process wrote to stdout and stderr so far.</summary>
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

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>Path of the built service next to the test assembly (test projects reference src/Server).</summary>
    public static string ServerAssembly => Path.Combine(AppContext.BaseDirectory, "CrmSecurity.Server.dll");

    /// <summary>Runs a verb (e.g. <c>keys list</c>) to completion and returns its exit code and output.</summary>
    public static async Task<(int ExitCode, string Output)> RunVerbAsync(
        IReadOnlyList<string> arguments,
        IReadOnlyDictionary<string, string?>? environment = null,
        string? workingDirectory = null,
        CancellationToken cancellationToken = default)
    {
        await using var process = Launch(arguments, environment, workingDirectory);
        await process._process.WaitForExitAsync(cancellationToken);
        process._process.WaitForExit(); // flushes the asynchronous output readers
        return (process._process.ExitCode, process.Output);
    }

    /// <summary>
    /// The Testing environment of every child process, then <paramref name="environment"/> on top. Null unsets a variable
    /// (the process would otherwise see it set and empty), so a test can take away one this sets, as DOTNET_ENVIRONMENT
    /// for a start like `dotnet run`'s.
    /// </summary>
    public static void SetTestingEnvironment(ProcessStartInfo start, IReadOnlyDictionary<string, string?>? environment)
    {
        start.Environment["DOTNET_ENVIRONMENT"] = "Testing";
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Testing";
        start.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                start.Environment.Remove(key);
            }
            else
            {
                start.Environment[key] = value;
            }
        }
    }

    /// <summary>Starts the web service on a free port and waits until it says where it listens.</summary>
    public static Task<ServerProcess> StartAsync(
        IReadOnlyDictionary<string, string?>? environment = null,
        string? workingDirectory = null,
        TimeSpan? timeout = null,
        CancellationToken cancellationToken = default) =>
        ListenAsync("http://127.0.0.1:0", environment, workingDirectory, timeout, cancellationToken);

    /// <summary>
    /// As above, on <paramref name="address"/>: for an address known before the start, as the public origin
    /// (<c>Identity:Issuer</c>) that links made by a verb name. Take a port from <see cref="FreeLoopbackPort"/>.
    /// </summary>
    public static Task<ServerProcess> StartOnAsync(
        Uri address,
        IReadOnlyDictionary<string, string?>? environment = null,
        string? workingDirectory = null,
        CancellationToken cancellationToken = default) =>
        ListenAsync(address.GetLeftPart(UriPartial.Authority), environment, workingDirectory, timeout: null, cancellationToken);

    /// <summary>A loopback port nothing listens on right now (the system's choice for port 0, released at once).</summary>
    public static int FreeLoopbackPort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task<ServerProcess> ListenAsync(
        string urls,
        IReadOnlyDictionary<string, string?>? environment,
        string? workingDirectory,
        TimeSpan? timeout,
        CancellationToken cancellationToken)
    {
        var server = Launch(["serve", "--urls", urls], environment, workingDirectory);
        using var timer = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timer.CancelAfter(timeout ?? TimeSpan.FromSeconds(60));
        var exited = server._process.WaitForExitAsync(timer.Token);
        var finished = await Task.WhenAny(server._listening.Task, exited);
        if (finished != server._listening.Task)
        {
            int? exitCode = server._process.HasExited ? server._process.ExitCode : null;
            var output = server.Output;
            await server.DisposeAsync();
            throw new ServerStartException(exitCode, output);
        }

        return server;
    }

    /// <summary>Starts the service and returns once the process has ended (for start-up failures).</summary>
    public static Task<(int ExitCode, string Output)> StartExpectingExitAsync(
        IReadOnlyDictionary<string, string?>? environment = null,
        CancellationToken cancellationToken = default) =>
        StartExpectingExitAsync(environment, workingDirectory: null, cancellationToken);

    /// <summary>As above, in <paramref name="workingDirectory"/> (where the service would write a development key).</summary>
    public static async Task<(int ExitCode, string Output)> StartExpectingExitAsync(
        IReadOnlyDictionary<string, string?>? environment, string? workingDirectory, CancellationToken cancellationToken)
    {
        await using var server = Launch(["serve", "--urls", "http://127.0.0.1:0"], environment, workingDirectory);
        using var timer = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timer.CancelAfter(TimeSpan.FromSeconds(60));
        await server._process.WaitForExitAsync(timer.Token);
        server._process.WaitForExit();
        return (server._process.ExitCode, server.Output);
    }

    /// <summary>Kills the process at once, as a crash or an OOM kill would.</summary>
    public void Kill() => _process.Kill(entireProcessTree: true);

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private static ServerProcess Launch(IReadOnlyList<string> arguments, IReadOnlyDictionary<string, string?>? environment, string? workingDirectory)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? AppContext.BaseDirectory,
        };
        start.ArgumentList.Add(ServerAssembly);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        SetTestingEnvironment(start, environment);

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var server = new ServerProcess(process);
        process.OutputDataReceived += (_, e) => server.Append(e.Data);
        process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        process.Start();
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return server;
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }

        if (ListeningLine().Match(line) is { Success: true } match)
        {
            _listening.TrySetResult(new Uri(match.Groups["url"].Value));
        }
    }

    [GeneratedRegex(@"listening on (?<url>https?://\S+)")]
    private static partial Regex ListeningLine();
}

/// <summary>The service did not start listening: it exited (with <see cref="ExitCode"/>) or timed out (null).</summary>
public sealed class ServerStartException(int? exitCode, string output)
    : InvalidOperationException($"The server did not start listening{(exitCode is { } code ? $" (exit code {code})" : "")}. Output:{Environment.NewLine}{output}")
{
    public int? ExitCode => exitCode;

    public string Output => output;
}
