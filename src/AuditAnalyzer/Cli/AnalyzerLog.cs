using Microsoft.Extensions.Logging;

namespace CrmSecurity.AuditAnalyzer.Cli;

/// <summary>Log events of the analyzer verbs; ids 6000-6099 belong to the analyzer.</summary>
internal static partial class AnalyzerLog
{
    [LoggerMessage(EventId = 6001, Level = LogLevel.Information, Message = "Analyzing {Files} events file(s), {Bytes} bytes, with policy {Policy}; baselines of {Users} users loaded")]
    public static partial void Started(ILogger logger, int files, long bytes, string policy, int users);

    [LoggerMessage(EventId = 6002, Level = LogLevel.Warning, Message = "Rejected {File}:{Line}: {Reason}: {Problem}")]
    public static partial void Rejected(ILogger logger, string file, long line, string reason, string problem);

    [LoggerMessage(EventId = 6003, Level = LogLevel.Warning, Message = "{Count} more rejected lines are not logged one by one; the summary counts them by reason and --rejects lists them all")]
    public static partial void MoreRejected(ILogger logger, long count);

    [LoggerMessage(EventId = 6004, Level = LogLevel.Warning, Message = "{Warning}")]
    public static partial void InputWarning(ILogger logger, string warning);

    [LoggerMessage(EventId = 6005, Level = LogLevel.Information, Message = "Scored {Events} events in {Seconds:0.0} s ({Rate:0} events/s); {Findings} findings; baselines of {Users} users saved")]
    public static partial void Completed(ILogger logger, long events, double seconds, double rate, int findings, int users);
}
