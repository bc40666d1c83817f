using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using CrmSecurity.AuditAnalyzer.Service;
using CrmSecurity.Identity.Events;
using CrmSecurity.Server.Events;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.HandOff;

// The price of the in-process hand-off of Identity's access events to the analyzer (issue 17), per event, against the
// price of the token request that makes one such event, both measured in this process in the same run:
//   dotnet run -c Release --project bench/HandOff -- [rounds] [tokens per round] [batches of 500 events per round]
// The real host (src/Server's Program, in-process, in-memory HTTP, fresh SQLite file, demo clients) with the hand-off
// switched off, so token requests do not feed it, and background scoring off, so nothing scores what is stored. Each round:
//   token     POST /connect/token (client credentials, demo-crm), one at a time: what one event's request costs
//   sink      AnalyzerEventSink.StoreBatchAsync on batches of 500 token_issue events (the background writer's batch):
//             contract mapping, the JSON line, validation and the insert (SQLite, group commit); what the hand-off costs per event
//   writer    ILiveEventWriter.WriteAsync on the same events already as JSON Lines (parse + validate + insert): the sink's
//             path before it wrote its lines itself, without the serializing
//   json-old  the JSON lines as the sink made them before (reflection serializer, one string per event, then UTF-8 bytes)
//   json-new  AnalyzerEventSink.Lines: source-generated serializer into one reused buffer, one string per event
//   insert    ILiveEventWriter.WriteValidatedAsync on lines made beforehand: what storing costs without any parsing
// Per phase: wall ns and process CPU ns per operation and bytes allocated per operation; medians over the rounds.
internal static class HandOffBench
{
    // The serializer settings the sink used for its JSON lines before it wrote them itself (nulls left out).
    private static readonly System.Text.Json.JsonSerializerOptions LinesOptions =
        new() { DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull };

    public static async Task Main(string[] args)
    {
        var rounds = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 15;
        var tokensPerRound = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 200;
        var batchesPerRound = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 4;
        const int BatchSize = 500;

        var directory = Directory.CreateTempSubdirectory("crm-handoff-").FullName;
        try
        {
            using var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(builder =>
            {
                builder.UseEnvironment("Testing");
                // The server's settings files are copied beside this program (the factory would look for a source tree).
                builder.UseContentRoot(AppContext.BaseDirectory);
                foreach (var (key, value) in new Dictionary<string, string?>
                {
                    ["Database:Provider"] = "Sqlite",
                    ["Database:ConnectionString"] = $"Data Source={Path.Combine(directory, "security.db")}",
                    ["Identity:AllowHttp"] = "true",
                    ["Identity:Issuer"] = "http://localhost/", // the in-memory server listens nowhere
                    ["Identity:DemoMode"] = "true",
                    ["Identity:MailPickupDirectory"] = Path.Combine(directory, "mail"),
                    ["Identity:Throttling:TokenPerIpPerSecond"] = "1000000",
                    ["Identity:Throttling:TokenPerClientPerSecond"] = "1000000",
                    ["AuditAnalyzer:DemoHistory:Enabled"] = "false",
                    ["AuditAnalyzer:IdentityEvents:Enabled"] = "false",
                    ["AuditAnalyzer:Live:Scoring"] = "false",
                    ["Serilog:MinimumLevel:Default"] = "Warning",
                })
                {
                    builder.UseSetting(key, value);
                }
            });
            using var http = factory.CreateClient();
            var sink = factory.Services.GetRequiredService<AnalyzerEventSink>();
            var writer = factory.Services.GetRequiredService<ILiveEventWriter>();

            async Task TokenAsync()
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, "/connect/token")
                {
                    Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = "crm.api" }),
                };
                request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String("demo-crm:demo-crm-secret"u8));
                using var response = await http.SendAsync(request);
                response.EnsureSuccessStatusCode();
                await response.Content.LoadIntoBufferAsync();
            }

            // Shaped as WriteTokenIssuedEvent writes them for demo-crm.
            var serial = 0;
            List<AccessEvent> Batch() => [.. Enumerable.Range(0, BatchSize).Select(_ => new AccessEvent
            {
                Timestamp = DateTimeOffset.UtcNow,
                UserId = "demo-crm",
                Action = AccessActions.TokenIssue,
                Tenant = "demo",
                ClientId = "demo-crm",
                SourceIp = "127.0.0.1",
                Details = string.Create(CultureInfo.InvariantCulture, $"grant_type=client_credentials; scope=crm.api; n={serial++}"),
            })];

            // The JSON Lines the sink made before it took the writer's pre-validated entry: same mapping, default serializer.
            static ReadOnlyMemory<byte> Lines(List<AccessEvent> batch)
            {
                // Exactly the sink's code before (commit 3b32643): serialized into one stream, handed over as its buffer.
                var lines = new MemoryStream();
                foreach (var e in batch)
                {
                    System.Text.Json.JsonSerializer.Serialize(lines, AnalyzerEventSink.ToContract(e), LinesOptions);
                    lines.WriteByte((byte)'\n');
                }

                return lines.GetBuffer().AsMemory(0, (int)lines.Length);
            }

            var phases = new Dictionary<string, List<(double Wall, double Cpu, double Bytes)>>(StringComparer.Ordinal)
            {
                ["token"] = [], ["sink"] = [], ["writer"] = [], ["json-old"] = [], ["json-new"] = [], ["insert"] = [],
            };

            async Task<(double Wall, double Cpu, double Bytes)> MeasureAsync(int operations, Func<Task> work)
            {
                var process = Process.GetCurrentProcess();
                process.Refresh();
                var cpu = process.TotalProcessorTime;
                var bytes = GC.GetTotalAllocatedBytes(precise: true);
                var started = Stopwatch.GetTimestamp();
                await work();
                var wall = Stopwatch.GetElapsedTime(started);
                var allocated = GC.GetTotalAllocatedBytes(precise: true) - bytes;
                process.Refresh();
                var used = process.TotalProcessorTime - cpu;
                return (wall.TotalNanoseconds / operations, used.TotalNanoseconds / operations, (double)allocated / operations);
            }

            Console.WriteLine($"warm-up ...");
            for (var i = 0; i < 300; i++)
            {
                await TokenAsync();
            }

            for (var i = 0; i < 6; i++)
            {
                await sink.StoreBatchAsync(Batch());
                await writer.WriteAsync(AnalyzerEventSink.ClientId, Lines(Batch()), CancellationToken.None);
            }

            Console.WriteLine($"{rounds} rounds of {tokensPerRound} token requests, {batchesPerRound} x {BatchSize} events through the sink, the same through the writer's JSON Lines entry");
            for (var round = 0; round < rounds; round++)
            {
                phases["token"].Add(await MeasureAsync(tokensPerRound, async () =>
                {
                    for (var i = 0; i < tokensPerRound; i++)
                    {
                        await TokenAsync();
                    }
                }));
                var batches = Enumerable.Range(0, batchesPerRound).Select(_ => Batch()).ToList();
                phases["sink"].Add(await MeasureAsync(batchesPerRound * BatchSize, async () =>
                {
                    foreach (var batch in batches)
                    {
                        await sink.StoreBatchAsync(batch);
                    }
                }));
                batches = [.. Enumerable.Range(0, batchesPerRound).Select(_ => Batch())];
                phases["json-old"].Add(await MeasureAsync(batchesPerRound * BatchSize, () =>
                {
                    foreach (var batch in batches)
                    {
                        Lines(batch);
                    }

                    return Task.CompletedTask;
                }));
                phases["json-new"].Add(await MeasureAsync(batchesPerRound * BatchSize, () =>
                {
                    foreach (var batch in batches)
                    {
                        AnalyzerEventSink.Lines(batch);
                    }

                    return Task.CompletedTask;
                }));
                var validated = Enumerable.Range(0, batchesPerRound).Select(_ => AnalyzerEventSink.Lines(Batch())).ToList();
                phases["insert"].Add(await MeasureAsync(batchesPerRound * BatchSize, async () =>
                {
                    foreach (var batch in validated)
                    {
                        await writer.WriteValidatedAsync(AnalyzerEventSink.ClientId, batch, CancellationToken.None);
                    }
                }));
                var lines = Enumerable.Range(0, batchesPerRound).Select(_ => Lines(Batch())).ToList();
                phases["writer"].Add(await MeasureAsync(batchesPerRound * BatchSize, async () =>
                {
                    foreach (var batch in lines)
                    {
                        await writer.WriteAsync(AnalyzerEventSink.ClientId, batch, CancellationToken.None);
                    }
                }));
            }

            static double Median(IEnumerable<double> values)
            {
                var sorted = values.Order().ToArray();
                return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
            }

            Console.WriteLine($"{"phase",-9} {"wall ns/op",12} {"CPU ns/op",12} {"bytes/op",10}   (medians of {rounds} rounds; CPU = the whole process)");
            foreach (var (name, results) in phases)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{name,-9} {Median(results.Select(r => r.Wall)),12:N0} {Median(results.Select(r => r.Cpu)),12:N0} {Median(results.Select(r => r.Bytes)),10:N0}"));
            }

            var perRound = phases["token"].Zip(phases["sink"], (token, sink) => (Cpu: sink.Cpu / token.Cpu, Wall: sink.Wall / token.Wall)).ToList();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"RESULT sink_cpu_ns_per_event={Median(phases["sink"].Select(r => r.Cpu)):F0} token_cpu_ns={Median(phases["token"].Select(r => r.Cpu)):F0} " +
                $"sink_share_of_token_cpu={Median(perRound.Select(r => r.Cpu)):P2} sink_share_of_token_wall={Median(perRound.Select(r => r.Wall)):P2} " +
                $"sink_bytes_per_event={Median(phases["sink"].Select(r => r.Bytes)):F0} token_bytes={Median(phases["token"].Select(r => r.Bytes)):F0}"));
        }
        finally
        {
            try
            {
                Directory.Delete(directory, recursive: true);
            }
            catch (IOException)
            {
                // SQLite may still hold the file for a moment; the directory is a temporary one.
            }
        }
    }
}
