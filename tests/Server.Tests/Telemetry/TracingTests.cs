using System.Net;
using System.Text;
using CrmSecurity.Tests.Support;

namespace CrmSecurity.Server.Tests.Telemetry;

/// <summary>
/// Traces reach an OTLP collector: the real executable, pointed at a collector by the standard
/// <c>OTEL_EXPORTER_OTLP_*</c> variables (OTLP/HTTP, protobuf), sends the span of a request it served.
/// </summary>
public sealed class TracingTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-tracing-").FullName;

    [Fact]
    public async Task A_request_served_is_exported_as_a_span_of_the_crm_security_service_over_otlp()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        var port = ServerProcess.FreeLoopbackPort();
        using var collector = new HttpListener();
        collector.Prefixes.Add($"http://127.0.0.1:{port}/");
        collector.Start();
        var traces = new List<byte[]>();
        var receiving = Task.Run(async () =>
        {
            while (collector.IsListening)
            {
                var context = await collector.GetContextAsync();
                using var body = new MemoryStream();
                await context.Request.InputStream.CopyToAsync(body, cancellationToken);
                if (context.Request.Url!.AbsolutePath == "/v1/traces")
                {
                    lock (traces)
                    {
                        traces.Add(body.ToArray());
                    }
                }

                context.Response.StatusCode = 200;
                context.Response.Close();
            }
        }, cancellationToken);

        await using var server = await ServerProcess.StartAsync(new Dictionary<string, string?>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Development",
            ["DOTNET_ENVIRONMENT"] = "Development",
            ["Identity__DemoMode"] = "false",
            ["Database__Provider"] = "Sqlite",
            ["Database__ConnectionString"] = $"Data Source={Path.Combine(_directory, "security.db")}",
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = $"http://127.0.0.1:{port}",
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            ["OTEL_BSP_SCHEDULE_DELAY"] = "200",
        }, cancellationToken: cancellationToken);
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        using var served = await http.GetAsync(new Uri("/.well-known/openid-configuration", UriKind.Relative), cancellationToken);
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);

        // Protobuf keeps strings as UTF-8 bytes: the service name of the resource and the route of the span.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        string? exported = null;
        while (DateTime.UtcNow < deadline && exported is null)
        {
            await Task.Delay(200, cancellationToken);
            lock (traces)
            {
                exported = traces.Select(t => Encoding.UTF8.GetString(t)).FirstOrDefault(t => t.Contains("/.well-known/openid-configuration", StringComparison.Ordinal));
            }
        }

        Assert.NotNull(exported);
        Assert.Contains("crm-security", exported, StringComparison.Ordinal);
        collector.Stop();
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
