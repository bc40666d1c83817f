using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

// Loopback load run: N concurrent clients mixing token requests, decision checks and event batches against a
// running service for a fixed time. Reports per operation: count, errors, p50/p90/p99/max latency; exits 1 on
// any error (a non-2xx answer or a failed request). Usage:
//   LoadRun --url http://127.0.0.1:5190 --clients 200 --seconds 60 --warmup 10 --user <sub> [--ops token,check,events,empty,encrypt,encrypt-batch]
//           [--batch 50] [--client demo-crm --secret demo-crm-secret] [--tenant demo]
//   LoadRun ingest --url ... --user <sub> --provider sqlite|postgres --db <connection string> [--senders 16 --batch 500 --seconds 30]
//           issue 17's ingestion run (IngestRun.cs): accepted events/s against a direct-write floor, probe p99 idle and busy.
if (args.Length > 0 && args[0] == "ingest")
{
    return await IngestRun.RunAsync(args);
}

var settings = Settings.Parse(args);
using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = settings.Clients, PooledConnectionLifetime = Timeout.InfiniteTimeSpan };
using var http = new HttpClient(handler) { BaseAddress = new Uri(settings.Url), Timeout = TimeSpan.FromSeconds(30) };

var tokens = new TokenSource(http, settings);
var operations = new Dictionary<string, Func<Random, CancellationToken, Task<HttpResponseMessage>>>
{
    ["token"] = (_, ct) => tokens.RequestAsync("crm.api", ct),
    ["check"] = async (random, ct) =>
    {
        var body = JsonSerializer.Serialize(new
        {
            user_id = settings.User,
            entity = "contact",
            action = "read",
            record = new { owner = settings.User, business_unit = settings.BusinessUnit },
        });
        return await PostAsync("/authz/v1/check", await tokens.CachedAsync("authz.decide", ct), body, "application/json", ct);
    },
    ["events"] = async (random, ct) =>
    {
        var lines = new StringBuilder();
        var now = DateTimeOffset.UtcNow;
        for (var i = 0; i < settings.BatchSize; i++)
        {
            lines.Append(JsonSerializer.Serialize(new
            {
                event_id = Guid.NewGuid().ToString("N"),
                timestamp = now.ToString("O", CultureInfo.InvariantCulture),
                user_id = $"load-user-{random.Next(500)}",
                action = "read",
                entity = "contact",
                record_id = random.Next(100_000).ToString(CultureInfo.InvariantCulture),
            })).Append('\n');
        }

        return await PostAsync(settings.EventsPath, await tokens.CachedAsync("events:write", ct), lines.ToString(), "application/x-ndjson", ct);
    },
    ["empty"] = (_, ct) => http.GetAsync("/health/live", ct),
    // The encryption service: one 32-byte value per call, or --batch values per call (issue 16's measure: values per
    // second of the batch endpoint against the single-value one, in the same run).
    ["encrypt"] = async (random, ct) =>
        await PostAsync("/crypto/v1/encrypt", await tokens.CachedAsync("crypto:encrypt", ct), JsonSerializer.Serialize(EncryptItem(random)), "application/json", ct),
    ["encrypt-batch"] = async (random, ct) =>
        await PostAsync("/crypto/v1/encrypt/batch", await tokens.CachedAsync("crypto:encrypt", ct),
            JsonSerializer.Serialize(new { items = Enumerable.Range(0, settings.BatchSize).Select(_ => EncryptItem(random)).ToArray() }), "application/json", ct),
};

// Values each operation carries, for the values-per-second column.
int ValuesPer(string op) => op is "encrypt-batch" or "events" ? settings.BatchSize : 1;

// 32 bytes of plaintext, a row id, the tenant the benchmark client is registered for.
object EncryptItem(Random random) => new
{
    tenant = settings.Tenant,
    table = "contact",
    column = "email",
    rowId = random.Next(1_000_000).ToString(CultureInfo.InvariantCulture),
    plaintext = "load-" + random.Next(100_000_000).ToString("D8", CultureInfo.InvariantCulture) + "@bench.example.org".PadRight(19, 'x'),
};

foreach (var op in settings.Operations.Where(op => !operations.ContainsKey(op)))
{
    Console.Error.WriteLine($"error: unknown operation '{op}' (use {string.Join(", ", operations.Keys)})");
    return 2;
}

if (settings.Warmup > 0)
{
    Console.WriteLine($"warm-up {settings.Warmup} s ...");
    await RunAsync(TimeSpan.FromSeconds(settings.Warmup));
}

Console.WriteLine($"{settings.Clients} clients, {settings.Seconds} s, operations {string.Join(", ", settings.Operations)} against {settings.Url}");
var results = await RunAsync(TimeSpan.FromSeconds(settings.Seconds));
Console.WriteLine($"{"operation",-13} {"count",8} {"errors",7} {"per s",8} {"values/s",9} {"p50 ms",8} {"p90 ms",8} {"p99 ms",8} {"max ms",8}");
var totalErrors = 0L;
foreach (var (name, result) in results.OrderBy(r => r.Key, StringComparer.Ordinal))
{
    var sorted = result.Latencies.ToArray();
    Array.Sort(sorted);
    totalErrors += result.Errors;
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{name,-13} {sorted.Length,8} {result.Errors,7} {sorted.Length / settings.Seconds,8:F0} {(double)sorted.Length * ValuesPer(name) / settings.Seconds,9:F0} {Percentile(sorted, 0.50),8:F2} {Percentile(sorted, 0.90),8:F2} {Percentile(sorted, 0.99),8:F2} {(sorted.Length > 0 ? sorted[^1] : 0),8:F2}"));
    foreach (var (error, count) in result.ErrorKinds.Take(5))
    {
        Console.WriteLine($"    {count} x {error}");
    }
}

Console.WriteLine($"RESULT errors={totalErrors}");
return totalErrors == 0 ? 0 : 1;

async Task<Dictionary<string, OperationResult>> RunAsync(TimeSpan duration)
{
    var results = settings.Operations.ToDictionary(op => op, _ => new OperationResult(), StringComparer.Ordinal);
    using var stop = new CancellationTokenSource(duration);
    var clients = Enumerable.Range(0, settings.Clients).Select(async client =>
    {
        var random = new Random(client);
        var mine = settings.Operations.ToDictionary(op => op, _ => new OperationResult(), StringComparer.Ordinal);
        while (!stop.IsCancellationRequested)
        {
            var op = settings.Operations[random.Next(settings.Operations.Count)];
            var started = Stopwatch.GetTimestamp();
            string? error = null;
            try
            {
                using var response = await operations[op](random, CancellationToken.None);
                await response.Content.LoadIntoBufferAsync();
                if (!response.IsSuccessStatusCode)
                {
                    error = $"HTTP {(int)response.StatusCode}: {Truncate(await response.Content.ReadAsStringAsync())}";
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or InvalidOperationException)
            {
                error = ex.GetType().Name + ": " + ex.Message;
            }

            var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            mine[op].Record(elapsed, error);
        }

        return mine;
    }).ToList();
    foreach (var mine in await Task.WhenAll(clients))
    {
        foreach (var (op, result) in mine)
        {
            results[op].Merge(result);
        }
    }

    return results;
}

async Task<HttpResponseMessage> PostAsync(string path, string token, string body, string mediaType, CancellationToken ct)
{
    using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, mediaType) };
    request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
    return await http.SendAsync(request, ct);
}

static double Percentile(double[] sorted, double q) =>
    sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];

static string Truncate(string text) => text.Length <= 160 ? text : text[..160] + "...";

/// <summary>Latencies and errors of one operation.</summary>
internal sealed class OperationResult
{
    public List<double> Latencies { get; } = [];

    public long Errors { get; private set; }

    public Dictionary<string, long> ErrorKinds { get; } = new(StringComparer.Ordinal);

    public void Record(double milliseconds, string? error)
    {
        Latencies.Add(milliseconds);
        if (error is not null)
        {
            Errors++;
            ErrorKinds[error] = ErrorKinds.GetValueOrDefault(error) + 1;
        }
    }

    public void Merge(OperationResult other)
    {
        Latencies.AddRange(other.Latencies);
        Errors += other.Errors;
        foreach (var (error, count) in other.ErrorKinds)
        {
            ErrorKinds[error] = ErrorKinds.GetValueOrDefault(error) + count;
        }
    }
}

/// <summary>Client-credentials tokens: fresh ones for the token operation, cached ones (per scope) for the others.</summary>
internal sealed class TokenSource(HttpClient http, Settings settings)
{
    private readonly Dictionary<string, Task<string>> _cached = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    public Task<HttpResponseMessage> RequestAsync(string scope, CancellationToken ct)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/connect/token")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = scope }),
        };
        // RFC 6749 §2.3.1 client_secret_basic.
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Uri.EscapeDataString(settings.ClientId)}:{Uri.EscapeDataString(settings.ClientSecret)}")));
        return http.SendAsync(request, ct);
    }

    public Task<string> CachedAsync(string scope, CancellationToken ct)
    {
        lock (_lock)
        {
            if (!_cached.TryGetValue(scope, out var token))
            {
                token = FetchAsync(scope, ct);
                _cached[scope] = token;
            }

            return token;
        }
    }

    private async Task<string> FetchAsync(string scope, CancellationToken ct)
    {
        using var response = await RequestAsync(scope, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"token for scope '{scope}': HTTP {(int)response.StatusCode} {text}");
        }

        using var document = JsonDocument.Parse(text);
        return document.RootElement.GetProperty("access_token").GetString()!;
    }
}

/// <summary>Command-line settings.</summary>
internal sealed record Settings(string Url, int Clients, int Seconds, int Warmup, IReadOnlyList<string> Operations, string User, string BusinessUnit,
    string ClientId, string ClientSecret, string EventsPath, int BatchSize, string Tenant)
{
    public static Settings Parse(string[] args)
    {
        string Get(string name, string fallback)
        {
            var at = Array.IndexOf(args, "--" + name);
            return at >= 0 && at + 1 < args.Length ? args[at + 1] : fallback;
        }

        return new Settings(
            Get("url", "http://127.0.0.1:5190"),
            int.Parse(Get("clients", "200"), CultureInfo.InvariantCulture),
            int.Parse(Get("seconds", "60"), CultureInfo.InvariantCulture),
            int.Parse(Get("warmup", "10"), CultureInfo.InvariantCulture),
            Get("ops", "token,check,events").Split(',', StringSplitOptions.RemoveEmptyEntries),
            Get("user", ""),
            Get("business-unit", ""),
            Get("client", "demo-crm"),
            Get("secret", "demo-crm-secret"),
            Get("events-path", "/analyzer/events"),
            int.Parse(Get("batch", "50"), CultureInfo.InvariantCulture),
            Get("tenant", "demo"));
    }
}
