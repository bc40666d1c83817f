using System.Text.Json;

namespace CrmSecurity.AuditAnalyzer.Findings;

/// <summary>Findings as JSON Lines, one <see cref="FindingJson"/> object per line.</summary>
internal sealed class FindingWriter(Stream output) : IDisposable
{
    private readonly Utf8JsonWriter _writer = new(output, new JsonWriterOptions { SkipValidation = true });

    public void Write(Finding finding)
    {
        FindingJson.Write(_writer, finding);
        _writer.Flush();
        output.WriteByte((byte)'\n');
        _writer.Reset();
    }

    public void Dispose()
    {
        _writer.Flush();
        _writer.Dispose();
    }
}
