using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Npgsql;
using NpgsqlTypes;

/// <summary>
/// Issue 17's ingestion load run, in one process and one run so that the ratios compare like with like on a shared,
/// noisy machine: (1) idle: probe clients measure token, check and health latency; (2) ingestion: senders post batches
/// of contract events as fast as the service accepts them (a 429 or 503 is waited out and the same batch sent again),
/// the same probes run alongside; (3) floor: the same rows written straight into a copy of the events table (PostgreSQL
/// binary COPY, SQLite plain 500-row transactions). Prints one table with the load average next to each phase.
/// </summary>
internal static class IngestRun
{
    private static readonly string[] SqliteNames = ["$k", "$c", "$u", "$p", "$t", "$l", "$r"];
    private static readonly string[] BenchRoles = ["bench_findings_reader"];

    public static async Task<int> RunAsync(string[] args)
    {
        string Get(string name, string fallback)
        {
            var at = Array.IndexOf(args, "--" + name);
            return at >= 0 && at + 1 < args.Length ? args[at + 1] : fallback;
        }

        int Int(string name, int fallback) => int.Parse(Get(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);

        var url = Get("url", "http://127.0.0.1:5191");
        // Two hosts (or more) on one database: senders spread over them; probes and the findings API on the first.
        var urls = Get("urls", url).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        url = urls[0];
        var senders = Int("senders", 16);
        var batch = Int("batch", 500);
        var seconds = Int("seconds", 30);
        var idleSeconds = Int("idle", 15);
        var floorSeconds = Int("floor-seconds", 15);
        var floorWriters = Int("floor-writers", 1);
        var probes = Int("probes", 3);
        var probeInterval = TimeSpan.FromMilliseconds(Int("probe-interval-ms", 50));
        var user = Get("user", "");
        var businessUnit = Get("business-unit", "sales-west");
        var provider = Get("provider", "sqlite");
        var database = Get("db", "");
        var client = Get("client", "demo-crm");
        var secret = Get("secret", "demo-crm-secret");
        var serverPids = Get("server-pid", "0").Split(',').Select(p => int.Parse(p, CultureInfo.InvariantCulture)).Where(p => p > 0).ToArray();
        var serverPid = serverPids.FirstOrDefault();
        var partitions = Int("partitions", 16);
        // Paced phases after the saturating one, as fractions of its accepted rate: where scoring keeps up.
        var fractions = Get("fractions", "0.25,0.5,0.75").Split(',', StringSplitOptions.RemoveEmptyEntries)
            .Select(f => double.Parse(f, CultureInfo.InvariantCulture)).ToArray();
        var pacedSeconds = Int("paced-seconds", seconds);
        var drainLimit = TimeSpan.FromSeconds(Int("drain-seconds", 180));
        var plantEvery = TimeSpan.FromSeconds(Int("plant-every", 5));
        var auditClient = Get("audit-client", "demo-audit");
        var auditSecret = Get("audit-secret", "demo-audit-secret");
        var databasePid = Int("db-pid", 0);

        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = senders + probes + 4, PooledConnectionLifetime = Timeout.InfiniteTimeSpan };
        using var http = new HttpClient(handler) { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(60) };

        async Task<HttpResponseMessage> TokenAsync(string scope, CancellationToken ct, string? host = null, string? asClient = null, string? asSecret = null)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(new Uri(host ?? url), "/connect/token"))
            {
                Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = scope }),
            };
            // RFC 6749 §2.3.1 client_secret_basic.
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{asClient ?? client}:{asSecret ?? secret}")));
            return await http.SendAsync(request, ct);
        }

        async Task<string> AccessTokenAsync(string scope, string? host = null, string? asClient = null, string? asSecret = null)
        {
            using var response = await TokenAsync(scope, CancellationToken.None, host, asClient, asSecret);
            var text = await response.Content.ReadAsStringAsync();
            if (!response.IsSuccessStatusCode)
            {
                throw new InvalidOperationException($"token for scope '{scope}': HTTP {(int)response.StatusCode} {text}");
            }

            using var document = JsonDocument.Parse(text);
            return document.RootElement.GetProperty("access_token").GetString()!;
        }

        // Each host's own token (each host may sign with its own key).
        var writeTokens = new string[urls.Length];
        for (var h = 0; h < urls.Length; h++)
        {
            writeTokens[h] = await AccessTokenAsync("events:write", urls[h]);
        }

        await GrantFindingsReadAsync();
        var readToken = await AccessTokenAsync("findings:read", url, auditClient, auditSecret);
        var decideToken = await AccessTokenAsync("authz.decide");
        // The findings API answers a client only as the model allows: the audit client's application user gets a role that
        // reads findings (pseudonymous), as an operator would give it through the admin API.
        async Task GrantFindingsReadAsync()
        {
            var admin = await AccessTokenAsync("identity.admin", url, "demo-secops", "demo-secops-secret");
            async Task<string> CallAsync(HttpMethod method, string path, object? body)
            {
                using var request = new HttpRequestMessage(method, path);
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", admin);
                if (body is not null)
                {
                    request.Content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
                }

                using var response = await http.SendAsync(request);
                var text = await response.Content.ReadAsStringAsync();
                if (!response.IsSuccessStatusCode && response.StatusCode != HttpStatusCode.Conflict)
                {
                    throw new InvalidOperationException($"{method} {path}: HTTP {(int)response.StatusCode} {text}");
                }

                return text;
            }

            await CallAsync(HttpMethod.Post, "/admin/api/roles", new
            {
                id = "bench_findings_reader",
                name = "Findings reader (load run)",
                description = "Reads pseudonymous findings",
                privileges = new Dictionary<string, Dictionary<string, string>> { ["audit_finding"] = new() { ["read"] = "organization" } },
            });
            using var users = JsonDocument.Parse(await CallAsync(HttpMethod.Get, "/admin/api/users", null));
            var list = users.RootElement.ValueKind == JsonValueKind.Array ? users.RootElement : users.RootElement.GetProperty("items");
            var id = list.EnumerateArray().Where(u => u.GetProperty("user_name").GetString() == "demo-audit-app").Select(u => u.GetProperty("id").GetString()).FirstOrDefault();
            if (id is null)
            {
                using var created = JsonDocument.Parse(await CallAsync(HttpMethod.Post, "/admin/api/users", new
                {
                    user_name = "demo-audit-app",
                    display_name = "Load run's findings reader (application user)",
                    business_unit = "compliance",
                    application_client_id = auditClient,
                }));
                id = created.RootElement.GetProperty("id").GetString();
            }

            await CallAsync(HttpMethod.Put, $"/admin/api/users/{id}/roles", new { roles = BenchRoles });
        }

        var checkBody = JsonSerializer.Serialize(new { user_id = user, entity = "contact", action = "read", record = new { owner = user, business_unit = businessUnit } });

        // The probes: one request at a time each, token, check and health in turn, one every probe interval (paced, so
        // that the probes measure latency without taking the cores the senders would use).
        Func<int, CancellationToken, Task<HttpResponseMessage>>[] probeCalls =
        [
            (_, ct) => TokenAsync("crm.api", ct),
            (_, ct) =>
            {
                var request = new HttpRequestMessage(HttpMethod.Post, "/authz/v1/check") { Content = new StringContent(checkBody, Encoding.UTF8, "application/json") };
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", decideToken);
                return http.SendAsync(request, ct);
            },
            (_, ct) => http.GetAsync(new Uri("/health/live", UriKind.Relative), ct),
        ];
        string[] probeNames = ["token", "check", "health"];

        async Task<List<double>[]> ProbeAsync(CancellationToken stop)
        {
            var latencies = probeNames.Select(_ => new List<double>()).ToArray();
            var errors = 0;
            await Task.WhenAll(Enumerable.Range(0, probes).Select(async p =>
            {
                var mine = probeNames.Select(_ => new List<double>()).ToArray();
                for (var i = p; !stop.IsCancellationRequested; i++)
                {
                    var op = i % probeNames.Length;
                    var started = Stopwatch.GetTimestamp();
                    try
                    {
                        using var response = await probeCalls[op](i, CancellationToken.None);
                        await response.Content.LoadIntoBufferAsync();
                        if (!response.IsSuccessStatusCode)
                        {
                            Interlocked.Increment(ref errors);
                        }
                    }
                    catch (HttpRequestException)
                    {
                        Interlocked.Increment(ref errors);
                    }

                    var elapsed = Stopwatch.GetElapsedTime(started);
                    mine[op].Add(elapsed.TotalMilliseconds);
                    if (elapsed < probeInterval)
                    {
                        try
                        {
                            await Task.Delay(probeInterval - elapsed, stop);
                        }
                        catch (OperationCanceledException)
                        {
                            break;
                        }
                    }
                }

                lock (latencies)
                {
                    for (var op = 0; op < mine.Length; op++)
                    {
                        latencies[op].AddRange(mine[op]);
                    }
                }
            }));
            if (errors > 0)
            {
                Console.WriteLine($"  probe errors: {errors}");
            }

            return latencies;
        }

        var rows = new RowSource(batch);
        await using var lag = new ScoringLag(provider, database, partitions);
        using var lagStop = new CancellationTokenSource();
        var lagPolling = lag.RunAsync(lagStop.Token);
        var findingLag = new FindingLag(http, urls, writeTokens, readToken);

        // Warm-up: the JIT, the connection pools, the first pages of the table.
        Console.WriteLine($"ingestion load run against {string.Join(", ", urls)}: {senders} senders x {batch} events, {probes} probes (one request per {probeInterval.TotalMilliseconds} ms each), provider {provider}");
        using (var warm = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
        {
            await Task.WhenAll(ProbeAsync(warm.Token), SendAsync(2, warm.Token, 0, 0));
        }

        await DrainAsync(0);

        // Phase 1: idle.
        var idleLoad = LoadAverage();
        List<double>[] idle;
        using (var stop = new CancellationTokenSource(TimeSpan.FromSeconds(idleSeconds)))
        {
            idle = await ProbeAsync(stop.Token);
        }

        // Phase 2: ingestion with the same probes, as fast as the service takes it; a finding planted every few seconds.
        var ingestLoadBefore = LoadAverage();
        var ingestCpuBefore = CpuSeconds(serverPids, databasePid);
        List<double>[] busy;
        (long Accepted, long Batches, long Refused, long Unavailable, long Errors) sent;
        (List<double> Lags, int Missing) planted;
        var clock = Stopwatch.StartNew();
        using (var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds)))
        {
            var probing = ProbeAsync(stop.Token);
            var planting = findingLag.RunAsync(plantEvery, stop.Token);
            sent = await SendAsync(senders, stop.Token, 1, 0);
            busy = await probing;
            planted = await planting;
        }

        var ingestSeconds = clock.Elapsed.TotalSeconds;
        var ingestCpu = CpuSeconds(serverPids, databasePid).Minus(ingestCpuBefore);
        var ingestLoad = LoadAverage();
        var accepted = sent.Accepted / ingestSeconds;
        var lagRows = new List<string> { LagRow("saturating", 1, accepted, ingestLoad, await lag.BacklogAsync(), await DrainAsync(1), planted) };

        // Paced phases: the same senders held to a fraction of the saturating rate. Scoring keeps up where its lag stays
        // bounded; the highest such rate is the maximum sustained rate.
        for (var i = 0; i < fractions.Length; i++)
        {
            var phase = i + 2;
            var rate = accepted * fractions[i];
            var load = LoadAverage();
            var pacedClock = Stopwatch.StartNew();
            (long Accepted, long Batches, long Refused, long Unavailable, long Errors) paced;
            using (var stop = new CancellationTokenSource(TimeSpan.FromSeconds(pacedSeconds)))
            {
                var planting = findingLag.RunAsync(plantEvery, stop.Token);
                paced = await SendAsync(senders, stop.Token, phase, rate);
                planted = await planting;
            }

            sent = (sent.Accepted, sent.Batches, sent.Refused + paced.Refused, sent.Unavailable + paced.Unavailable, sent.Errors + paced.Errors);
            var pacedRate = paced.Accepted / pacedClock.Elapsed.TotalSeconds;
            lagRows.Add(LagRow(string.Create(CultureInfo.InvariantCulture, $"paced {fractions[i]:P0}"), phase, pacedRate, $"{load} -> {LoadAverage()}",
                await lag.BacklogAsync(), await DrainAsync(phase), planted));
        }

        await lagStop.CancelAsync();
        await lagPolling;

        // Phase 3: the floor, the same rows straight into a copy of the table.
        var floorLoadBefore = LoadAverage();
        var floorCpuBefore = CpuSeconds(serverPids, databasePid);
        var floorRows = provider.StartsWith("postgres", StringComparison.OrdinalIgnoreCase)
            ? await PostgresFloorAsync(database, rows, floorWriters, TimeSpan.FromSeconds(floorSeconds))
            : await SqliteFloorAsync(database, rows, TimeSpan.FromSeconds(floorSeconds));
        var floorCpu = CpuSeconds(serverPids, databasePid).Minus(floorCpuBefore);
        var floorLoad = LoadAverage();

        var floor = floorRows / (double)floorSeconds;
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"accepted events/s      {accepted,10:F0}   ({sent.Batches} batches, {sent.Refused} x 429, {sent.Unavailable} x 503, {sent.Errors} errors; load {ingestLoadBefore} -> {ingestLoad})"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"floor rows/s           {floor,10:F0}   ({(provider.StartsWith("postgres", StringComparison.OrdinalIgnoreCase) ? $"binary COPY of {batch}-row batches, {floorWriters} writers" : $"plain {batch}-row transactions, 1 writer")}; load {floorLoadBefore} -> {floorLoad})"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ratio                  {accepted / floor,10:P0}"));
        if (serverPid > 0)
        {
            // On a machine shared with other work the wall-clock ratio also measures how the scheduler shares the cores
            // between phases with different numbers of runnable threads; events per CPU-second of everything involved
            // (service, database server, this load generator) does not.
            var ingestPerCpu = sent.Accepted / ingestCpu.Total;
            // The floor does not involve the service (its background scorer may still be busy then): not counted.
            var floorPerCpu = floorRows / (floorCpu.Database + floorCpu.Generator);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"events per CPU-second  {ingestPerCpu,10:F0}   (service {ingestCpu.Server:F1} s + database {ingestCpu.Database:F1} s + load generator {ingestCpu.Generator:F1} s)"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"floor per CPU-second   {floorPerCpu,10:F0}   (database {floorCpu.Database:F1} s + load generator {floorCpu.Generator:F1} s; service meanwhile {floorCpu.Server:F1} s, not counted)"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ratio per CPU-second   {ingestPerCpu / floorPerCpu,10:P0}"));
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{"p99 ms",-8} {"idle",8} {"ingesting",10} {"x",6}   (idle load {idleLoad})"));
        for (var op = 0; op < probeNames.Length; op++)
        {
            var (a, b) = (Percentile(idle[op], 0.99), Percentile(busy[op], 0.99));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{probeNames[op],-8} {a,8:F1} {b,10:F1} {b / a,6:F1}   ({idle[op].Count} / {busy[op].Count} requests)"));
        }

        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{"scoring",-12} {"events/s",9}   {"scoring lag s: p50 / p99 / max",-32} {"batches",8} {"backlog at end",15} {"drained in",11}   {"finding lag s: p50 / max (n)",-30} load"));
        foreach (var row in lagRows)
        {
            Console.WriteLine(row);
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"RESULT accepted_per_s={accepted:F0} floor_per_s={floor:F0} errors={sent.Errors}"));
        return sent.Errors == 0 ? 0 : 1;

        // Waits until every batch of the phase is scored (at most the drain limit); how long that took, null when it did not.
        async Task<double?> DrainAsync(int phase)
        {
            var waited = Stopwatch.StartNew();
            while (lag.Waiting(phase) > 0)
            {
                if (waited.Elapsed > drainLimit)
                {
                    return null;
                }

                await Task.Delay(ScoringLag.PollInterval);
            }

            return waited.Elapsed.TotalSeconds;
        }

        string LagRow(string name, int phase, double rate, string load, long backlog, double? drained, (List<double> Lags, int Missing) findings)
        {
            var (scored, waiting) = lag.Lags(phase);
            // A batch still unscored after the drain limit counts with its age then: a lower bound, marked with '>'.
            var all = scored.Concat(waiting).ToList();
            var open = waiting.Count > 0 ? ">" : "";
            var lagText = all.Count == 0 ? "-" : string.Create(CultureInfo.InvariantCulture, $"{Percentile(all, 0.5):F1} / {open}{Percentile(all, 0.99):F1} / {open}{all.Max():F1}");
            var findingText = findings.Lags.Count == 0 ? $"- ({findings.Missing} not seen)" : string.Create(CultureInfo.InvariantCulture,
                $"{Percentile(findings.Lags, 0.5):F1} / {(findings.Missing > 0 ? ">180" : findings.Lags.Max().ToString("F1", CultureInfo.InvariantCulture))} ({findings.Lags.Count + findings.Missing}{(findings.Missing > 0 ? $", {findings.Missing} not seen" : "")})");
            return string.Create(CultureInfo.InvariantCulture,
                $"{name,-12} {rate,9:F0}   {lagText,-32} {all.Count,8} {backlog,15} {(drained is { } d ? $"{d:F1} s" : $">{drainLimit.TotalSeconds:F0} s"),11}   {findingText,-30} {load}");
        }

        async Task<(long, long, long, long, long)> SendAsync(int count, CancellationToken stop, int phase, double rate)
        {
            long accepted = 0, batches = 0, refused = 0, unavailable = 0, errors = 0, issued = 0;
            var started = Stopwatch.GetTimestamp();
            await Task.WhenAll(Enumerable.Range(0, count).Select(async sender =>
            {
                var host = sender % urls.Length;
                (string Lines, string First, string Last)? pending = null;
                while (!stop.IsCancellationRequested)
                {
                    if (pending is null && rate > 0)
                    {
                        // Paced: batch n is due n x batch / rate seconds after the start, whichever sender sends it.
                        var due = TimeSpan.FromSeconds(Interlocked.Increment(ref issued) * (double)batch / rate);
                        var wait = due - Stopwatch.GetElapsedTime(started);
                        if (wait > TimeSpan.Zero)
                        {
                            try
                            {
                                await Task.Delay(wait, stop);
                            }
                            catch (OperationCanceledException)
                            {
                                return;
                            }
                        }
                    }

                    pending ??= rows.NextBatchLines();
                    using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(new Uri(urls[host]), "/analyzer/events"))
                    {
                        Content = new StringContent(pending.Value.Lines, Encoding.UTF8, "application/x-ndjson"),
                    };
                    request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", writeTokens[host]);
                    try
                    {
                        using var response = await http.SendAsync(request, CancellationToken.None);
                        var text = await response.Content.ReadAsStringAsync();
                        if (response.StatusCode is HttpStatusCode.TooManyRequests or HttpStatusCode.ServiceUnavailable)
                        {
                            Interlocked.Increment(ref response.StatusCode == HttpStatusCode.TooManyRequests ? ref refused : ref unavailable);
                            var wait = response.Headers.RetryAfter?.Delta ?? TimeSpan.FromSeconds(1);
                            try
                            {
                                await Task.Delay(wait, stop);
                            }
                            catch (OperationCanceledException)
                            {
                                return;
                            }

                            continue; // the same batch again: idempotent on event_id
                        }

                        if (!response.IsSuccessStatusCode)
                        {
                            Interlocked.Increment(ref errors);
                            Console.WriteLine($"  HTTP {(int)response.StatusCode}: {(text.Length > 160 ? text[..160] : text)}");
                        }
                        else
                        {
                            using var document = JsonDocument.Parse(text);
                            Interlocked.Add(ref accepted, document.RootElement.GetProperty("stored").GetInt32());
                            Interlocked.Increment(ref batches);
                            lag.Acked(phase, $"{client}:{pending.Value.First}", $"{client}:{pending.Value.Last}");
                        }
                    }
                    catch (HttpRequestException e)
                    {
                        Interlocked.Increment(ref errors);
                        Console.WriteLine($"  {e.Message}");
                    }

                    pending = null;
                }
            }));
            return (accepted, batches, refused, unavailable, errors);
        }
    }

    private static async Task<long> SqliteFloorAsync(string connectionString, RowSource rows, TimeSpan duration)
    {
        await using var connection = new SqliteConnection(connectionString);
        await connection.OpenAsync();
        await CopyTableAsync(connection, "SELECT sql FROM sqlite_master WHERE tbl_name = 'analyzer_live_events' AND sql IS NOT NULL");
        var written = 0L;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < duration)
        {
            await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync();
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = "INSERT INTO bench_floor_events (event_key, client_id, user_id, \"partition\", timestamp_ticks, line, scored, received_ticks) VALUES ($k, $c, $u, $p, $t, $l, 0, $r)";
            var parameters = SqliteNames.Select(name => command.Parameters.Add(new SqliteParameter { ParameterName = name })).ToArray();
            foreach (var row in rows.NextBatchRows())
            {
                (parameters[0].Value, parameters[1].Value, parameters[2].Value, parameters[3].Value, parameters[4].Value, parameters[5].Value, parameters[6].Value) =
                    (row.Key, row.Client, row.User, row.Partition, row.Ticks, row.Line, row.Received);
                await command.ExecuteNonQueryAsync();
            }

            await transaction.CommitAsync();
            written += rows.BatchSize;
        }

        return written;
    }

    private static async Task CopyTableAsync(SqliteConnection connection, string query)
    {
        var statements = new List<string>();
        await using (var read = connection.CreateCommand())
        {
            read.CommandText = query;
            await using var reader = await read.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                statements.Add(reader.GetString(0).Replace("analyzer_live_events", "bench_floor_events", StringComparison.Ordinal));
            }
        }

        await using var command = connection.CreateCommand();
        command.CommandText = "DROP TABLE IF EXISTS bench_floor_events; " + string.Join("; ", statements);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<long> PostgresFloorAsync(string connectionString, RowSource rows, int writers, TimeSpan duration)
    {
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("DROP TABLE IF EXISTS bench_floor_events; CREATE TABLE bench_floor_events (LIKE analyzer_live_events INCLUDING ALL)", connection);
            await command.ExecuteNonQueryAsync();
        }

        var written = 0L;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, writers).Select(async _ =>
        {
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync();
            while (clock.Elapsed < duration)
            {
                await using (var copy = await connection.BeginBinaryImportAsync(
                    "COPY bench_floor_events (event_key, client_id, user_id, \"partition\", timestamp_ticks, line, scored, received_ticks) FROM STDIN (FORMAT BINARY)"))
                {
                    foreach (var row in rows.NextBatchRows())
                    {
                        await copy.StartRowAsync();
                        await copy.WriteAsync(row.Key, NpgsqlDbType.Varchar);
                        await copy.WriteAsync(row.Client, NpgsqlDbType.Varchar);
                        await copy.WriteAsync(row.User, NpgsqlDbType.Varchar);
                        await copy.WriteAsync(row.Partition, NpgsqlDbType.Integer);
                        await copy.WriteAsync(row.Ticks, NpgsqlDbType.Bigint);
                        await copy.WriteAsync(row.Line, NpgsqlDbType.Text);
                        await copy.WriteAsync(false, NpgsqlDbType.Boolean);
                        await copy.WriteAsync(row.Received, NpgsqlDbType.Bigint);
                    }

                    await copy.CompleteAsync();
                }

                Interlocked.Add(ref written, rows.BatchSize);
            }
        }));
        return written;
    }

    private static double Percentile(List<double> values, double q)
    {
        if (values.Count == 0)
        {
            return 0;
        }

        var sorted = values.ToArray();
        Array.Sort(sorted);
        return sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
    }

    /// <summary>CPU time used so far (utime + stime, proc(5)) by the service, the database server with its backends, and this process.</summary>
    private readonly record struct Cpu(double Server, double Database, double Generator)
    {
        public double Total => Server + Database + Generator;

        public Cpu Minus(Cpu before) => new(Server - before.Server, Database - before.Database, Generator - before.Generator);
    }

    private static Cpu CpuSeconds(int[] serverPids, int databasePid)
    {
        const double ticksPerSecond = 100; // USER_HZ: 100 on Linux x86-64 (getconf CLK_TCK)
        double Ticks(int pid)
        {
            try
            {
                var stat = File.ReadAllText($"/proc/{pid}/stat");
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                // After "pid (comm) ": field 3 is state, so utime (field 14) and stime (15) are at 11 and 12 here.
                return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / ticksPerSecond;
            }
            catch (IOException)
            {
                return 0;
            }
        }

        double Database()
        {
            if (databasePid <= 0)
            {
                return 0;
            }

            // The postmaster and its children (backends, background writers), with what ended children used (cutime, cstime).
            var total = 0.0;
            foreach (var directory in Directory.EnumerateDirectories("/proc"))
            {
                if (!int.TryParse(Path.GetFileName(directory), out var pid))
                {
                    continue;
                }

                try
                {
                    var stat = File.ReadAllText($"/proc/{pid}/stat");
                    var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                    if (pid == databasePid || int.Parse(fields[1], CultureInfo.InvariantCulture) == databasePid)
                    {
                        total += (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)
                            + (pid == databasePid ? long.Parse(fields[13], CultureInfo.InvariantCulture) + long.Parse(fields[14], CultureInfo.InvariantCulture) : 0)) / ticksPerSecond;
                    }
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // The process ended meanwhile.
                }
            }

            return total;
        }

        return new Cpu(serverPids.Sum(Ticks), Database(), Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds);
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    /// <summary>Contract events (design.md), each with a fresh event_id; as JSON lines for the service, as rows for the floor.</summary>
    internal sealed class RowSource(int batchSize)
    {
        private long _next;

        public int BatchSize => batchSize;

        public readonly record struct Row(string Key, string Client, string User, int Partition, long Ticks, string Line, long Received);

        private string NextLine(Random random, out string user, out long ticks)
        {
            var id = Interlocked.Increment(ref _next);
            var now = DateTimeOffset.UtcNow;
            ticks = now.UtcTicks;
            user = "load-user-" + random.Next(5000).ToString(CultureInfo.InvariantCulture);
            return string.Create(CultureInfo.InvariantCulture,
                $"{{\"event_id\":\"ev-{Environment.ProcessId}-{id}\",\"timestamp\":\"{now:O}\",\"user_id\":\"{user}\",\"action\":\"read\",\"entity\":\"contact\",\"record_id\":\"{random.Next(100_000)}\",\"source_ip\":\"10.0.{random.Next(256)}.{random.Next(256)}\"}}");
        }

        /// <summary>A batch as JSON lines, with its first and last event_id (a batch is stored in line order).</summary>
        public (string Lines, string First, string Last) NextBatchLines()
        {
            var lines = new StringBuilder(batchSize * 220);
            string first = "", last = "";
            for (var i = 0; i < batchSize; i++)
            {
                var line = NextLine(Random.Shared, out _, out _);
                last = line[13..line.IndexOf('"', 13)];
                if (i == 0)
                {
                    first = last;
                }

                lines.Append(line).Append('\n');
            }

            return (lines.ToString(), first, last);
        }

        public IEnumerable<Row> NextBatchRows()
        {
            var received = DateTimeOffset.UtcNow.UtcTicks;
            for (var i = 0; i < batchSize; i++)
            {
                var line = NextLine(Random.Shared, out var user, out var ticks);
                yield return new Row("demo-crm:" + line[13..line.IndexOf('"', 13)], "demo-crm", user, (int)((uint)user.GetHashCode() % 16), ticks, line, received);
            }
        }
    }
}
