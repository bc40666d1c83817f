using System.Diagnostics;
using System.Globalization;

namespace CrmSecurity.Crypto.Benchmarks;

/// <summary>
/// Runs baseline and library alternately in many short rounds and reports the median of the per-round ratios,
/// so a change in machine load hits both sides of a round alike. Complements the BenchmarkDotNet run on a
/// shared machine; the same benchmark methods are measured.
/// </summary>
public static class Interleaved
{
    public static void Run()
    {
        foreach (var size in Environment.GetEnvironmentVariable("BENCH_ONLY_JOB") is null ? new[] { 16, 32, 64, 1024 } : [])
        {
            var fields = new FieldEncryptionBenchmarks { Size = size };
            fields.Setup();
            Report($"field encrypt+decrypt {size,4} B vs raw AesGcm", () => fields.RawAesGcm(), () => fields.FieldEncryptor(), 20_000);
            Report($"  raw AesGcm with same-length AAD {size,4} B vs raw AesGcm", () => fields.RawAesGcm(), () => fields.RawAesGcmWithAad(), 20_000);
            Report($"  field encrypt+decrypt {size,4} B vs raw AesGcm with same-length AAD", () => fields.RawAesGcmWithAad(), () => fields.FieldEncryptor(), 20_000);
            Report($"  raw AesGcm with AAD without context {size,4} B vs with full AAD", () => fields.RawAesGcmWithAad(), () => fields.RawAesGcmWithShortAad(), 20_000);
            // Issue 16: what a format version binding the row inside the plaintext (no AAD call) could reach at best.
            Report($"  raw AesGcm, row sealed in the plaintext, no AAD {size,4} B vs raw AesGcm", () => fields.RawAesGcm(), () => fields.RawAesGcmRowSealed(), 20_000);
            Report($"  field encrypt+decrypt {size,4} B vs raw AesGcm, row sealed in the plaintext", () => fields.RawAesGcmRowSealed(), () => fields.FieldEncryptor(), 20_000);
            fields.Cleanup();
        }

        // BENCH_ONLY_FIELDS=1: the field rows alone (the format comparison of docs/crypto-formats.md), a minute or two.
        if (Environment.GetEnvironmentVariable("BENCH_ONLY_FIELDS") is not null)
        {
            return;
        }

        if (Environment.GetEnvironmentVariable("BENCH_ONLY_JOB") is null)
        {
            var index = new BlindIndexBenchmarks();
            index.Setup();
            Report("blind index vs raw HMACSHA256", () => index.RawHmacSha256(), () => index.BlindIndex(), 20_000);
            index.Cleanup();
        }

        var job = new ReencryptionBenchmarks();
        job.Setup();
        var ratios = new List<double>();
        for (var round = 0; round < 21; round++)
        {
            job.Reset();
            var watch = Stopwatch.StartNew();
            job.RawDecryptEncryptLoop();
            var raw = watch.Elapsed.TotalMilliseconds;
            job.Reset();
            watch.Restart();
            job.ReencryptionJob();
            ratios.Add(raw / watch.Elapsed.TotalMilliseconds);
        }

        job.Cleanup();
        ratios.Sort();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"re-encryption job throughput vs raw loop (10,000 rows, batches of 1,000): median {ratios[ratios.Count / 2]:P0} over {ratios.Count} rounds"));
    }

    private static void Report(string name, Func<object> baseline, Func<object> library, int calls)
    {
        for (var i = 0; i < calls; i++)
        {
            baseline();
            library();
        }

        var ratios = new List<double>();
        for (var round = 0; round < 41; round++)
        {
            var watch = Stopwatch.StartNew();
            for (var i = 0; i < calls / 10; i++)
            {
                baseline();
            }

            var b = watch.Elapsed.TotalMilliseconds;
            watch.Restart();
            for (var i = 0; i < calls / 10; i++)
            {
                library();
            }

            var l = watch.Elapsed.TotalMilliseconds;
            ratios.Add(l / b);
        }

        ratios.Sort();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name}: median ratio {ratios[ratios.Count / 2]:0.00} (quartiles {ratios[ratios.Count / 4]:0.00}-{ratios[3 * ratios.Count / 4]:0.00}, {ratios.Count} rounds)"));
    }
}
