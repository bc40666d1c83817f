namespace CrmSecurity.Samples.Crm;

/// <summary>The sample's log messages (no values of contacts, no tokens).</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Warning, "Crm:Events:Endpoint is empty: access events are not sent to the service")]
    public static partial void FeedOff(ILogger logger);

    [LoggerMessage(2, LogLevel.Warning, "Posting {Count} access events failed ({Reason}); retrying in {Delay}")]
    public static partial void PostFailed(ILogger logger, int count, string reason, TimeSpan delay);

    [LoggerMessage(3, LogLevel.Error, "{Count} access events were dropped because the queue was full")]
    public static partial void Dropped(ILogger logger, long count);

    [LoggerMessage(4, LogLevel.Warning, "Generated a development master key at {Path}; set {Variable} outside Development")]
    public static partial void DevelopmentKey(ILogger logger, string path, string variable);

    [LoggerMessage(6, LogLevel.Error, "The service refused a batch of {Count} access events with {Status}; it is dropped, not retried")]
    public static partial void BatchRefused(ILogger logger, int count, int status);

    [LoggerMessage(7, LogLevel.Information, "A back-channel logout token ended {Which} session(s) of user {Subject}")]
    public static partial void SessionsEnded(ILogger logger, string subject, string which);

    [LoggerMessage(8, LogLevel.Warning, "Refused a back-channel logout token: {Reason}")]
    public static partial void RefusedLogoutToken(ILogger logger, string reason);

    [LoggerMessage(5, LogLevel.Information, "Sample CRM on {Urls}, signing in through {Service}")]
    public static partial void Started(ILogger logger, string urls, string service);
}
