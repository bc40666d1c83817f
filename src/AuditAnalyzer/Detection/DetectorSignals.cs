using System.Globalization;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Findings;

namespace CrmSecurity.AuditAnalyzer.Detection;

/// <summary>Number formats the detectors' reason texts share.</summary>
internal static class Numbers
{
    public static string N(double value) => Math.Round(value).ToString("N0", CultureInfo.InvariantCulture);

    public static string Percent(double share) => (share * 100).ToString(share < 0.1 ? "0.#" : "0", CultureInfo.InvariantCulture) + "%";
}

/// <summary>How a detector reports: a reason with its score, capped at 100, and the day's evidence behind it.</summary>
internal static class DetectorSignals
{
    internal static void Add(List<Signal> signals, in UserView view, AccessEvent e, string code, double score, string text, double? typical, double? actual)
    {
        if (score <= 0)
        {
            return;
        }

        signals.Add(new Signal(new Reason(code, Math.Round(Math.Min(100, score), 1), text, typical, actual), e.Timestamp, Evidence(view, e), view.Profile.Learning));
    }

    internal static IReadOnlyList<string> Evidence(in UserView view, AccessEvent e)
    {
        var list = new List<string>(Math.Min(view.DayEvidence.Count + 1, 21));
        foreach (var id in view.DayEvidence)
        {
            list.Add(id);
        }

        if (!list.Contains(e.EventId))
        {
            list.Add(e.EventId);
        }

        return list;
    }
}
