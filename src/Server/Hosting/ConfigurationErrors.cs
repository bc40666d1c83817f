using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Server.Hosting;

/// <summary>
/// Recognises the exceptions that mean "a setting is wrong" wherever they surface (host start, a verb, the
/// log), so every one of them ends as one line naming the setting and exit code 78, never a stack trace.
/// </summary>
internal static partial class ConfigurationErrors
{
    /// <summary>The message to show for a configuration error, or null when <paramref name="exception"/> is something else.</summary>
    public static string? Describe(Exception exception)
    {
        for (var current = exception; current is not null; current = current.InnerException)
        {
            switch (current)
            {
                case AggregateException aggregate when aggregate.InnerExceptions.Count > 1:
                    // Start-up validates every section and reports all failures at once (one AggregateException): name
                    // every wrong setting, not only the first, so an operator fixes them in one go.
                    var all = aggregate.InnerExceptions.Select(Describe).OfType<string>().ToList();
                    if (all.Count > 0)
                    {
                        return string.Join(Environment.NewLine, all);
                    }

                    break;
                case OptionsValidationException validation:
                    return string.Join(Environment.NewLine, validation.Failures);
                case InvalidOperationException when current.Source == "Microsoft.Extensions.Configuration.Binder":
                    return Unconvertible(current.Message);
                case ConfigurationException:
                    return current.Message;
                case Crypto.Providers.KeyManagementException when current.Message.StartsWith("Crypto:", StringComparison.Ordinal):
                    // A key-encryption key that cannot be opened names its setting first (KeyEncryptionKeys.Open).
                    return current.Message;
            }
        }

        return null;
    }

    // The binder's message quotes the value; a value can be a secret typed into the wrong setting, so only the
    // setting's name and the expected type are repeated.
    private static string Unconvertible(string binderMessage)
    {
        var match = BinderFailure().Match(binderMessage);
        if (!match.Success)
        {
            return "A setting has a value of the wrong type. " + BinderFailure().Replace(binderMessage, string.Empty);
        }

        var type = match.Groups["type"].Value;
        var name = type[(type.LastIndexOf('.') + 1)..];
        var hint = name switch
        {
            "TimeSpan" => " TimeSpan settings take the form [d.]hh:mm:ss, e.g. 00:10:00.",
            "Boolean" => " Use true or false.",
            "Int32" or "Int64" or "UInt32" or "UInt64" or "Int16" => " Use a whole number.",
            "Double" or "Decimal" or "Single" => " Use a number with a dot as decimal separator.",
            "Uri" => " Use an absolute URL.",
            _ => string.Empty,
        };
        return $"The setting '{match.Groups["path"].Value}' cannot be read as {name}.{hint}";
    }

    [GeneratedRegex(@"at '(?<path>[^']*)' to type '(?<type>[^']*)'")]
    private static partial Regex BinderFailure();
}
