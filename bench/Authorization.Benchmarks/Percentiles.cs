using System.Collections.Frozen;
using System.Diagnostics;
using System.Globalization;

namespace CrmSecurity.Authorization.Benchmarks;

/// <summary>
/// Per-call latency percentiles, which BenchmarkDotNet does not give (its percentiles are of iteration means): each
/// call is bracketed with <see cref="Stopwatch.GetTimestamp"/>, and an empty bracket is measured alongside so its
/// cost can be read off. Rounds alternate the three so load from other processes hits all of them alike.
/// Run it pinned to one core: <c>taskset -c 1 dotnet ... --percentiles</c>.
/// </summary>
internal static class Percentiles
{
    public static void Run(int rounds = 20, int callsPerRound = 100_000)
    {
        var snapshot = LargeModel.Build();
        var requests = LargeModel.Requests(snapshot, 4096);
        var users = snapshot.Users.ToFrozenDictionary(u => u.Id, u => u.Index, StringComparer.Ordinal);
        var classes = snapshot.Users.Select(u => u.Class).ToArray();
        var empty = new long[rounds * callsPerRound];
        var baseline = new long[rounds * callsPerRound];
        var check = new long[rounds * callsPerRound];
        var sink = 0;

        // Warm-up: tiered JIT and dynamic PGO reach their final code.
        for (var i = 0; i < 2_000_000; i++)
        {
            var r = requests[i & 4095];
            sink += users.TryGetValue(r.UserId, out var u) ? classes[u] : 0;
            var d = snapshot.Check(r.UserId, r.Entity, r.Action, r.Record);
            sink += (int)snapshot.Fields(d.User, r.EntityIndex)[0];
        }

        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        for (var round = 0; round < rounds; round++)
        {
            var offset = round * callsPerRound;
            for (var i = 0; i < callsPerRound; i++)
            {
                var start = Stopwatch.GetTimestamp();
                empty[offset + i] = Stopwatch.GetTimestamp() - start;
            }

            for (var i = 0; i < callsPerRound; i++)
            {
                var r = requests[(offset + i) & 4095];
                var start = Stopwatch.GetTimestamp();
                sink += users.TryGetValue(r.UserId, out var u) ? classes[u] : 0;
                baseline[offset + i] = Stopwatch.GetTimestamp() - start;
            }

            for (var i = 0; i < callsPerRound; i++)
            {
                var r = requests[(offset + i) & 4095];
                var start = Stopwatch.GetTimestamp();
                var d = snapshot.Check(r.UserId, r.Entity, r.Action, r.Record);
                var fields = snapshot.Fields(d.User, r.EntityIndex);
                sink += (d.Allowed ? 1 : 0) + (int)fields[fields.Length - 1];
                check[offset + i] = Stopwatch.GetTimestamp() - start;
            }
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{snapshot.Users.Length} users, {snapshot.Entities.Length} entities ({LargeModel.FieldsPerEntity} fields each), {snapshot.Roles.Length} roles, {snapshot.Classes.Length} access classes; {rounds} x {callsPerRound:N0} calls each; ns per call (timer bracket included)"));
        Print("empty bracket", empty);
        Print("baseline: user lookup", baseline);
        Print("check + field projection", check);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"bytes allocated during the measured calls: {allocated} (sink {sink & 1})"));
    }

    private static void Print(string name, long[] ticks)
    {
        Array.Sort(ticks);
        double Ns(double q) => ticks[Math.Min(ticks.Length - 1, (int)(q * ticks.Length))] * 1e9 / Stopwatch.Frequency;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name,-26} p50 {Ns(0.50),7:0} p90 {Ns(0.90),7:0} p99 {Ns(0.99),7:0} p99.9 {Ns(0.999),7:0} max {ticks[^1] * 1e9 / Stopwatch.Frequency,9:0}"));
    }
}
