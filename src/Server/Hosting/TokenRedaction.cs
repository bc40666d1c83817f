using System.Text.RegularExpressions;
using Serilog.Core;
using Serilog.Events;

namespace CrmSecurity.Server.Hosting;

/// <summary>
/// No token reaches the log (OWASP ASVS 4.0.3 V7.1.1): at Debug and Verbose levels OpenIddict and the JWT handlers log
/// each token they create or validate whole, and a signed JWT or an encrypted JWE in a log is a working credential for
/// whoever reads the log. Every string property of every event is searched for compact JWS/JWE serialisations (RFC 7515
/// §7.1, RFC 7516 §7.1: base64url segments joined by dots, beginning with a JOSE header <c>eyJ</c>) and each is replaced
/// by <c>[token redacted]</c> before any sink formats the message. Passwords, client secrets, codes and refresh tokens in
/// OpenIddict's request and response logs are already redacted by OpenIddict itself.
/// </summary>
internal sealed partial class TokenRedaction : ILogEventEnricher
{
    public const string Replacement = "[token redacted]";

    public void Enrich(LogEvent logEvent, ILogEventPropertyFactory propertyFactory)
    {
        List<LogEventProperty>? changed = null;
        foreach (var (name, value) in logEvent.Properties)
        {
            if (Redact(value) is { } redacted)
            {
                (changed ??= []).Add(new LogEventProperty(name, redacted));
            }
        }

        foreach (var property in changed ?? [])
        {
            logEvent.AddOrUpdateProperty(property);
        }
    }

    /// <summary>The value with every token replaced, or null when it holds none.</summary>
    private static LogEventPropertyValue? Redact(LogEventPropertyValue value)
    {
        switch (value)
        {
            case ScalarValue { Value: string text } when text.Contains("eyJ", StringComparison.Ordinal):
                var replaced = Token().Replace(text, Replacement);
                return ReferenceEquals(replaced, text) || replaced == text ? null : new ScalarValue(replaced);
            case SequenceValue sequence:
                var elements = sequence.Elements.Select(element => Redact(element) ?? element).ToList();
                return elements.SequenceEqual(sequence.Elements) ? null : new SequenceValue(elements);
            case StructureValue structure:
                var properties = structure.Properties.Select(p => Redact(p.Value) is { } r ? new LogEventProperty(p.Name, r) : p).ToList();
                return properties.SequenceEqual(structure.Properties) ? null : new StructureValue(properties, structure.TypeTag);
            case DictionaryValue dictionary:
                var entries = dictionary.Elements.Select(e => new KeyValuePair<ScalarValue, LogEventPropertyValue>(e.Key, Redact(e.Value) ?? e.Value)).ToList();
                return entries.Select(e => e.Value).SequenceEqual(dictionary.Elements.Select(e => e.Value)) ? null : new DictionaryValue(entries);
            default:
                return null;
        }
    }

    // A JOSE header ({"...) base64url-encoded, then one (JWS, unsecured) to four (JWE) more dot-separated segments.
    [GeneratedRegex(@"eyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*){2,4}")]
    private static partial Regex Token();
}
