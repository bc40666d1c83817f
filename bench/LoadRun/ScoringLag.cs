using System.Collections.Concurrent;
using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Npgsql;

/// <summary>
/// Scoring lag seen from the database, so that it means the same with one host or two: for every acknowledged batch,
/// the time from its 2xx until every event of it is scored. The batch's highest <c>seq</c> is read once (its first and
/// last keys: a batch is stored in line order); it is scored once no partition has an unscored event at or below that
/// seq (each partition is scored in seq order). One small query per poll: per partition, its lowest unscored seq, an
/// index probe on <c>(partition, scored, seq)</c> each, so the poll does not grow with the table.
/// </summary>
internal sealed class ScoringLag(string provider, string connectionString, int partitions) : IAsyncDisposable
{
    private readonly ConcurrentQueue<(int Phase, long Acked, string First, string Last)> _acked = new();
    private readonly List<(int Phase, long Acked, long MaxSeq)> _waiting = [];
    private readonly ConcurrentDictionary<int, ConcurrentBag<double>> _lags = new();
    private DbConnection? _connection;

    private bool Postgres => provider.StartsWith("postgres", StringComparison.OrdinalIgnoreCase);

    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(200);

    /// <summary>Call right after a batch's 2xx.</summary>
    public void Acked(int phase, string firstKey, string lastKey) => _acked.Enqueue((phase, Stopwatch.GetTimestamp(), firstKey, lastKey));

    /// <summary>Batches of the phase acknowledged but not seen scored yet (including those whose seq is not read yet).</summary>
    public int Waiting(int phase)
    {
        lock (_waiting)
        {
            return _waiting.Count(w => w.Phase == phase) + _acked.Count(a => a.Phase == phase);
        }
    }

    /// <summary>The lags (seconds) of the phase's batches seen scored, and the ages of those still waiting.</summary>
    public (List<double> Scored, List<double> StillWaiting) Lags(int phase)
    {
        var now = Stopwatch.GetTimestamp();
        lock (_waiting)
        {
            return ([.. _lags.GetValueOrDefault(phase) ?? []],
                [.. _waiting.Where(w => w.Phase == phase).Select(w => Stopwatch.GetElapsedTime(w.Acked, now).TotalSeconds)]);
        }
    }

    public async Task RunAsync(CancellationToken stop)
    {
        _connection = Postgres ? new NpgsqlConnection(connectionString) : new SqliteConnection(connectionString);
        await _connection.OpenAsync(stop);
        while (!stop.IsCancellationRequested)
        {
            try
            {
                // Every batch acknowledged since the last poll in one statement: one look-up per batch fell behind a
                // saturating run on a loaded machine, and its queue then showed up as scoring lag.
                var batches = _acked.ToArray();
                if (batches.Length > 0)
                {
                    var seqs = await SeqsAsync([.. batches.SelectMany(b => new[] { b.First, b.Last })]);
                    lock (_waiting)
                    {
                        foreach (var batch in batches)
                        {
                            _acked.TryDequeue(out _);
                            _waiting.Add((batch.Phase, batch.Acked, Math.Max(seqs.GetValueOrDefault(batch.First, long.MaxValue), seqs.GetValueOrDefault(batch.Last, 0))));
                        }
                    }
                }

                var lowest = await LowestUnscoredAsync();
                var now = Stopwatch.GetTimestamp();
                lock (_waiting)
                {
                    _waiting.RemoveAll(w =>
                    {
                        if (lowest is { } l && l <= w.MaxSeq)
                        {
                            return false;
                        }

                        _lags.GetOrAdd(w.Phase, _ => []).Add(Stopwatch.GetElapsedTime(w.Acked, now).TotalSeconds);
                        return true;
                    });
                }

                await Task.Delay(PollInterval, stop);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            catch (DbException e)
            {
                Console.WriteLine($"  lag poll: {e.Message}");
                await Task.Delay(PollInterval, CancellationToken.None);
            }
        }
    }

    /// <summary>Events stored and not scored yet (all partitions), counted per partition on the same index.</summary>
    public async Task<long> BacklogAsync()
    {
        await using var connection = Postgres ? (DbConnection)new NpgsqlConnection(connectionString) : new SqliteConnection(connectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = Postgres
            ? $"SELECT coalesce(sum((SELECT count(*) FROM analyzer_live_events WHERE \"partition\" = p AND NOT scored)), 0) FROM generate_series(0, {partitions - 1}) p"
            : $"WITH RECURSIVE p(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM p WHERE n < {partitions - 1}) SELECT coalesce(sum((SELECT count(*) FROM analyzer_live_events WHERE \"partition\" = p.n AND scored = 0)), 0) FROM p";
        return Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    /// <summary>The seqs the keys were stored under (acknowledged, so stored; a missing one counts as not scored yet).</summary>
    private async Task<Dictionary<string, long>> SeqsAsync(string[] keys)
    {
        await using var command = _connection!.CreateCommand();
        var parameter = command.CreateParameter();
        parameter.ParameterName = "@k";
        if (Postgres)
        {
            command.CommandText = "SELECT event_key, seq FROM analyzer_live_events WHERE event_key = ANY(@k)";
            parameter.Value = keys;
        }
        else
        {
            command.CommandText = "SELECT event_key, seq FROM analyzer_live_events WHERE event_key IN (SELECT value FROM json_each(@k))";
            parameter.Value = JsonSerializer.Serialize(keys);
        }

        command.Parameters.Add(parameter);
        var seqs = new Dictionary<string, long>(StringComparer.Ordinal);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            seqs[reader.GetString(0)] = reader.GetInt64(1);
        }

        return seqs;
    }

    private async Task<long?> LowestUnscoredAsync()
    {
        await using var command = _connection!.CreateCommand();
        command.CommandText = Postgres
            ? $"SELECT min((SELECT seq FROM analyzer_live_events WHERE \"partition\" = p AND NOT scored ORDER BY seq LIMIT 1)) FROM generate_series(0, {partitions - 1}) p"
            : $"WITH RECURSIVE p(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM p WHERE n < {partitions - 1}) SELECT min((SELECT seq FROM analyzer_live_events WHERE \"partition\" = p.n AND scored = 0 ORDER BY seq LIMIT 1)) FROM p";
        return await command.ExecuteScalarAsync() is long seq ? seq : null;
    }

    public async ValueTask DisposeAsync()
    {
        if (_connection is not null)
        {
            await _connection.DisposeAsync();
        }
    }
}

/// <summary>
/// Finding lag: during a phase, one event that must raise a finding is planted every few seconds (an export of 48,000
/// contacts by a user of its own: the sensitive-entity limit, a reason that needs no history, so it is raised during
/// the organisation's learning period too), spread over the hosts; the time from its 2xx until a finding whose
/// <c>event_ids</c> hold it is listed by <c>GET /analyzer/findings</c> (the auditor client's token, the first host).
/// </summary>
internal sealed class FindingLag(HttpClient http, string[] urls, string[] writeTokens, string readToken)
{
    private static readonly TimeSpan GiveUp = TimeSpan.FromSeconds(180);
    private int _planted;

    /// <summary>Plants until <paramref name="stop"/>, one every <paramref name="every"/>; the lags (seconds; a plant not seen within 180 s counts as that).</summary>
    public async Task<(List<double> Lags, int Missing)> RunAsync(TimeSpan every, CancellationToken stop)
    {
        var lags = new List<double>();
        var missing = 0;
        var plants = new List<Task<double?>>();
        while (!stop.IsCancellationRequested)
        {
            plants.Add(PlantAsync());
            try
            {
                await Task.Delay(every, stop);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        foreach (var lag in await Task.WhenAll(plants))
        {
            if (lag is { } seconds)
            {
                lags.Add(seconds);
            }
            else
            {
                missing++;
            }
        }

        return (lags, missing);
    }

    private async Task<double?> PlantAsync()
    {
        var n = Interlocked.Increment(ref _planted);
        var host = n % urls.Length;
        var id = $"plant-{Environment.ProcessId}-{n}";
        var line = string.Create(CultureInfo.InvariantCulture,
            $"{{\"event_id\":\"{id}\",\"timestamp\":\"{DateTimeOffset.UtcNow:O}\",\"user_id\":\"planted-{Environment.ProcessId}-{n}\",\"action\":\"export\",\"entity\":\"contact\",\"record_count\":48000}}\n");
        long acked;
        while (true)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(new Uri(urls[host]), "/analyzer/events")) { Content = new StringContent(line, Encoding.UTF8, "application/x-ndjson") };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", writeTokens[host]);
            using var response = await http.SendAsync(request);
            if (response.IsSuccessStatusCode)
            {
                acked = Stopwatch.GetTimestamp();
                break;
            }

            // 429/503 under load: the same event again after Retry-After (idempotent on event_id).
            await Task.Delay(response.Headers.RetryAfter?.Delta ?? TimeSpan.FromSeconds(1));
        }

        while (Stopwatch.GetElapsedTime(acked) < GiveUp)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(new Uri(urls[0]), "/analyzer/findings?limit=1000"));
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", readToken);
            using var response = await http.SendAsync(request);
            var now = Stopwatch.GetTimestamp();
            if (response.IsSuccessStatusCode)
            {
                using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
                if (document.RootElement.EnumerateArray().Any(f => f.GetProperty("event_ids").EnumerateArray().Any(e => e.GetString() == id)))
                {
                    return Stopwatch.GetElapsedTime(acked, now).TotalSeconds;
                }
            }
            else
            {
                Console.WriteLine($"  findings: HTTP {(int)response.StatusCode}");
            }

            await Task.Delay(250);
        }

        return null;
    }
}
