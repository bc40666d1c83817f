using CrmSecurity.AuditAnalyzer.Baselines;
using CrmSecurity.AuditAnalyzer.Policy;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Service.Retention;

/// <summary>Registers the retention of stored events (<see cref="EventRetention"/>) and the check of its setting.</summary>
internal static class RetentionSettings
{
    /// <summary>Most days a setting may name (a hundred years: "keep" without a special value).</summary>
    public const int MaxDays = 36_500;

    public static IServiceCollection AddEventRetention(this IServiceCollection services)
    {
        services.AddSingleton<IValidateOptions<LiveOptions>, RetentionDaysValidator>();
        services.AddSingleton<EventRetention>();
        services.AddHostedService(provider => provider.GetRequiredService<EventRetention>());
        return services;
    }

    /// <summary>
    /// The longest window of the past the policy's baselines and detectors look at, in days, and what it is. A partition
    /// rebuilt after a takeover replays only the kept events, so a shorter retention would quietly shorten that window.
    /// </summary>
    public static (int Days, string Window) LongestWindow(ScoringPolicy policy)
    {
        (int Days, string Window)[] windows =
        [
            (UserBaseline.RecentDays + policy.HistoryDays, $"the {UserBaseline.RecentDays}-day recent window plus history_days {policy.HistoryDays}"),
            (policy.Privilege.DormantDays, $"privilege.dormant_days {policy.Privilege.DormantDays}"),
            ((int)Math.Ceiling(policy.Privilege.EscalationWindow.TotalDays), "privilege.escalation_window_hours"),
            (policy.Departure.WatchDays, $"departure.watch_days {policy.Departure.WatchDays}"),
            (policy.Sharing.NewAccountDays, $"sharing.new_account_days {policy.Sharing.NewAccountDays}"),
            (policy.Snooping.BookDays, $"snooping.book_days {policy.Snooping.BookDays}"),
            (policy.Takeover.FamiliarDays, $"account_takeover.familiar_days {policy.Takeover.FamiliarDays}"),
        ];
        return windows.MaxBy(w => w.Days);
    }
}

/// <summary><c>AuditAnalyzer:Live:RetentionDays</c> is at least the policy's longest baseline window; otherwise start-up stops (exit 78).</summary>
internal sealed class RetentionDaysValidator(IServiceProvider services) : IValidateOptions<LiveOptions>
{
    public ValidateOptionsResult Validate(string? name, LiveOptions options)
    {
        ScoringPolicy policy;
        try
        {
            policy = services.GetRequiredService<ScoringPolicy>();
        }
#pragma warning disable CA1031 // A policy that cannot be read is reported, naming file and line, by the policy's own validator.
        catch (Exception)
#pragma warning restore CA1031
        {
            return ValidateOptionsResult.Skip;
        }

        var (minimum, window) = RetentionSettings.LongestWindow(policy);
        return options.RetentionDays >= minimum && options.RetentionDays <= RetentionSettings.MaxDays
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail(
                $"{LiveOptions.Section}:RetentionDays is {options.RetentionDays}; use {minimum} to {RetentionSettings.MaxDays} days: at least the " +
                $"scoring policy's longest baseline window ({window}, {policy.Source}), so a partition rebuilt from the kept events still has the history its baselines use.");
    }
}
