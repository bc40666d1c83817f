using System.Text.Json;
using System.Text.Json.Serialization;

namespace CrmSecurity.Crypto.Events;

/// <summary>Appends events as JSON Lines with the access-event contract's snake_case field names (what the analyzer ingests).</summary>
public sealed class JsonLinesEventSink : ICryptoEventSink, IDisposable
{
    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    private readonly string _path;
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>Creates the sink.</summary>
    /// <param name="path">The file to append to; its directory is created when missing.</param>
    public JsonLinesEventSink(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        _path = Path.GetFullPath(path);
    }

    /// <summary>The file events are appended to.</summary>
    public string FilePath => _path;

    /// <summary>Serialises one event as a JSON line.</summary>
    /// <param name="accessEvent">The event.</param>
    public static string ToJsonLine(CryptoAccessEvent accessEvent) => JsonSerializer.Serialize(accessEvent, Json);

    /// <inheritdoc />
    public async ValueTask WriteAsync(CryptoAccessEvent accessEvent, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(accessEvent);
        var line = ToJsonLine(accessEvent) + "\n";
        await _gate.WaitAsync(cancellationToken);
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(_path)!);
            await File.AppendAllTextAsync(_path, line, cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Releases the write lock.</summary>
    public void Dispose() => _gate.Dispose();
}
