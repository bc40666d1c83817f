using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using CrmSecurity.AuditAnalyzer.Evaluation;
using CrmSecurity.AuditAnalyzer.Findings;
using CrmSecurity.AuditAnalyzer.Ingestion;
using CrmSecurity.AuditAnalyzer.Organisation;
using CrmSecurity.AuditAnalyzer.Persistence;
using CrmSecurity.AuditAnalyzer.Policy;
using CrmSecurity.AuditAnalyzer.Scoring;
using CrmSecurity.AuditAnalyzer.Synthetic;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace CrmSecurity.AuditAnalyzer.Cli;

/// <summary>
/// How the analyzer's verbs run inside the host: a builder with the host's configuration, logging and
/// database (optionally pointed at a SQLite file), and the host's runner (start, validate, run, stop).
/// </summary>
public sealed class AnalyzerCliHost
{
    /// <summary>Creates a host builder; with a SQLite path the database is that file for this run.</summary>
    public required Func<string?, HostApplicationBuilder> CreateBuilder { get; init; }

    /// <summary>Adds the analyzer module (and its schema) to a builder.</summary>
    public required Action<HostApplicationBuilder> AddAnalyzer { get; init; }

    /// <summary>Starts the host (exit 78 on invalid settings), runs the verb and stops the host.</summary>
    public required Func<HostApplicationBuilder, Func<IServiceProvider, CancellationToken, Task<int>>, CancellationToken, Task<int>> Run { get; init; }
}

/// <summary>The analyzer's verbs: <c>analyze</c>, <c>generate</c> and <c>evaluate</c>.</summary>
public static class AuditAnalyzerCommands
{
    private const int NoInput = 66; // EX_NOINPUT
    private const int DataError = 65; // EX_DATAERR

    /// <summary>The three verbs, for the host's root command.</summary>
    public static IEnumerable<Command> Create(AnalyzerCliHost host)
    {
        ArgumentNullException.ThrowIfNull(host);
        yield return Analyze(host);
        yield return Generate(host);
        yield return Evaluate(host);
    }

    private static Command Analyze(AnalyzerCliHost host)
    {
        var events = new Option<string>("--events") { Description = "Events file or folder: JSON Lines, CSV or Salesforce EventLogFile CSVs, gzip or not.", Required = true };
        var directory = new Option<string?>("--directory") { Description = "Directory snapshot (users.csv): departments, roles, time zones, terminations." };
        var output = new Option<string>("--out") { Description = "Findings file to write (JSON Lines).", Required = true };
        var database = new Option<string?>("--database") { Description = "SQLite file holding the baselines for this run (overrides the configured database)." };
        var policy = new Option<string?>("--policy") { Description = "Scoring policy file (default: the built-in policies/audit-analyzer.json)." };
        var rejects = new Option<string?>("--rejects") { Description = "Write every rejected line (file:line: reason: problem) to this file." };
        var parseOnly = new Option<bool>("--parse-only") { Description = "Only read and parse the events (speed baseline); nothing is scored or saved." };
        var command = new Command("analyze", "Score access events for bulk exports, odd hours and privilege misuse; write explained findings.")
        {
            events, directory, output, database, policy, rejects, parseOnly,
        };
        command.SetAction((parse, cancellationToken) =>
        {
            var builder = host.CreateBuilder(parse.GetValue(database));
            if (parse.GetValue(policy) is { } policyPath)
            {
                builder.Configuration[$"{AuditAnalyzerOptions.Section}:{nameof(AuditAnalyzerOptions.Policy)}"] = policyPath;
            }

            host.AddAnalyzer(builder);
            var request = new AnalyzeRequest(parse.GetValue(events)!, parse.GetValue(directory), parse.GetValue(output)!, parse.GetValue(rejects), parse.GetValue(parseOnly));
            return host.Run(builder, (services, token) => RunAnalyzeAsync(services, request, token), cancellationToken);
        });
        return command;
    }

    private sealed record AnalyzeRequest(string Events, string? Directory, string Output, string? Rejects, bool ParseOnly);

    private static async Task<int> RunAnalyzeAsync(IServiceProvider services, AnalyzeRequest request, CancellationToken cancellationToken)
    {
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger("CrmSecurity.AuditAnalyzer.Analyze");
        var console = Terminal.Create();
        IReadOnlyList<string> files;
        try
        {
            files = EventInput.FindFiles(request.Events);
        }
        catch (FileNotFoundException e)
        {
            await Console.Error.WriteLineAsync(e.Message);
            return NoInput;
        }

        if (files.Count == 0)
        {
            await Console.Error.WriteLineAsync($"No events files (.jsonl, .ndjson, .json, .csv, optionally .gz) under '{request.Events}'.");
            return NoInput;
        }

        var report = new IngestionReport();
        var logged = 0L;
        StreamWriter? rejectsFile = request.Rejects is null ? null : new StreamWriter(request.Rejects, false);
        report.Rejected += rejection =>
        {
            rejectsFile?.WriteLine(rejection.ToString());
            logged++;
        };

        try
        {
            var root = Directory.Exists(request.Events) ? Path.GetFullPath(request.Events) : Path.GetDirectoryName(Path.GetFullPath(request.Events));
            var pool = new StringPool();
            if (request.ParseOnly)
            {
                using var parseInput = new EventInput(files, report, pool, root);
                var (count, elapsed) = AnalysisRun.ParseOnly(parseInput);
                console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"parse-only: {count:N0} events from {report.LinesRead:N0} lines in {elapsed.TotalSeconds:0.00} s ({count / Math.Max(elapsed.TotalSeconds, 1e-9):N0} events/s); {report.RejectedTotal:N0} lines rejected"));
                return 0;
            }

            UserDirectory directory;
            if (request.Directory is null)
            {
                directory = UserDirectory.Empty;
                report.Warn("directory", "no --directory given: every user is treated as UTC, in one peer group, and terminations are unknown");
            }
            else if (!File.Exists(request.Directory))
            {
                await Console.Error.WriteLineAsync($"No directory snapshot at '{request.Directory}'.");
                return NoInput;
            }
            else
            {
                try
                {
                    directory = DirectoryReader.Read(request.Directory, report);
                }
                catch (InvalidDataException e)
                {
                    await Console.Error.WriteLineAsync(e.Message);
                    return DataError;
                }
            }

            var policy = services.GetRequiredService<ScoringPolicy>();
            var db = services.GetRequiredService<AnalyzerDbContext>();
            var baselines = await BaselineStore.LoadAsync(db, policy.HistoryDays, cancellationToken);
            var scorer = new ScoringOptions
            {
                Policy = policy,
                Directory = directory,
                Baselines = baselines,
                TimeProvider = services.GetService<TimeProvider>() ?? TimeProvider.System,
            }.Build();

            using var input = new EventInput(files, report, pool, root);
            AnalyzerLog.Started(logger, files.Count, input.TotalBytes, policy.Source, baselines.Users.Count);
            AnalysisResult result;
            await using (var outputStream = new FileStream(request.Output, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            using (var writer = new FindingWriter(outputStream))
            {
                result = console.WithProgress(
                    $"Scoring {files.Count} file(s)",
                    progress => AnalysisRun.Run(input, scorer, report, writer.Write, progress, cancellationToken: cancellationToken));
            }

            await BaselineStore.SaveAsync(db, scorer.Baselines, DateTimeOffset.UtcNow, cancellationToken);

            // Logged after the progress bar is gone, so the two do not interleave on a terminal.
            foreach (var rejection in report.Examples)
            {
                AnalyzerLog.Rejected(logger, rejection.File, rejection.Line, RejectReasons.Name(rejection.Reason), rejection.Message);
            }

            if (logged > IngestionReport.KeptExamples)
            {
                AnalyzerLog.MoreRejected(logger, logged - IngestionReport.KeptExamples);
            }

            foreach (var warning in report.Warnings.Values)
            {
                AnalyzerLog.InputWarning(logger, warning);
            }

            var findings = result.FindingsBySeverity.Values.Sum();
            AnalyzerLog.Completed(logger, result.EventsScored, result.Elapsed.TotalSeconds, result.EventsPerSecond, findings, scorer.Baselines.Users.Count);
            Summary.Write(console, result, policy, request.Output);
            return 0;
        }
        finally
        {
            if (rejectsFile is not null)
            {
                await rejectsFile.DisposeAsync();
            }
        }
    }

    private static Command Generate(AnalyzerCliHost host)
    {
        var output = new Option<string>("--out") { Description = "Folder to write users.csv, events.jsonl[.gz] and answers.json into.", Required = true };
        var seed = new Option<int>("--seed") { Description = "Random seed (the same seed writes the same organisation).", DefaultValueFactory = _ => 1 };
        var users = new Option<int>("--users") { Description = "Number of users.", DefaultValueFactory = _ => 1000 };
        var days = new Option<int>("--days") { Description = "Days of activity.", DefaultValueFactory = _ => 150 };
        var warmup = new Option<int>("--warmup-days") { Description = "Days before the evaluation period (no insider acts then).", DefaultValueFactory = _ => 60 };
        var start = new Option<string>("--start") { Description = "First day (yyyy-MM-dd).", DefaultValueFactory = _ => "2026-01-05" };
        var insiders = new Option<double>("--insider-share") { Description = "Share of users who are insiders.", DefaultValueFactory = _ => 0.03 };
        var gzip = new Option<bool>("--gzip") { Description = "Write events.jsonl.gz." };
        var noNoise = new Option<bool>("--no-noise") { Description = "Do not add malformed lines, unknown actions and duplicates." };
        var command = new Command("generate", "Write a synthetic CRM organisation with benign look-alikes and labelled insiders, plus an answers file.")
        {
            output, seed, users, days, warmup, start, insiders, gzip, noNoise,
        };
        command.SetAction((parse, cancellationToken) =>
        {
            if (!DateOnly.TryParseExact(parse.GetValue(start), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var first))
            {
                Console.Error.WriteLine($"--start '{parse.GetValue(start)}' is not a date (yyyy-MM-dd).");
                return Task.FromResult(64);
            }

            // Every schedule is drawn inside the period: a month at least, and insiders act only after the warm-up, in the
            // at least 20 days after it.
            if (parse.GetValue(days) < 30)
            {
                Console.Error.WriteLine($"--days {parse.GetValue(days)} is too short: at least 30 days.");
                return Task.FromResult(64);
            }

            if (parse.GetValue(warmup) < 0 || parse.GetValue(warmup) > parse.GetValue(days) - 20)
            {
                Console.Error.WriteLine($"--warmup-days {parse.GetValue(warmup)} must be between 0 and --days minus 20 ({parse.GetValue(days) - 20}): insiders act only after the warm-up.");
                return Task.FromResult(64);
            }

            var settings = new GeneratorSettings
            {
                Seed = parse.GetValue(seed),
                Users = Math.Max(1, parse.GetValue(users)),
                Days = Math.Max(1, parse.GetValue(days)),
                WarmupDays = Math.Max(0, parse.GetValue(warmup)),
                Start = first,
                InsiderShare = Math.Clamp(parse.GetValue(insiders), 0, 0.5),
                Gzip = parse.GetValue(gzip),
                Noise = !parse.GetValue(noNoise),
            };
            var folder = parse.GetValue(output)!;
            return host.Run(host.CreateBuilder(null), (_, _) =>
            {
                var console = Terminal.Create();
                var result = console.WithProgress("Generating", progress => new OrganisationGenerator(settings).Write(folder, (day, total) => progress(day, total)));
                console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"wrote {result.Users:N0} users, {result.Insiders} insiders and {result.Events:N0} events over {settings.Days} days (seed {settings.Seed}):"));
                console.WriteLine($"  {result.UsersPath}");
                console.WriteLine($"  {result.EventsPath}");
                console.WriteLine($"  {result.AnswersPath}");
                return Task.FromResult(0);
            }, cancellationToken);
        });
        return command;
    }

    private static Command Evaluate(AnalyzerCliHost host)
    {
        var answers = new Option<string>("--answers") { Description = "answers.json written by generate.", Required = true };
        var findings = new Option<string>("--findings") { Description = "Findings file written by analyze.", Required = true };
        var minSeverity = new Option<string>("--min-severity") { Description = "Findings at or above this severity are alerts: low, medium, high, critical.", DefaultValueFactory = _ => "medium" };
        var json = new Option<string?>("--json") { Description = "Also write the figures as JSON to this file." };
        var command = new Command("evaluate", "Measure findings against an answers file: recall, false-positive user-days, per-scenario recall, time to detect.")
        {
            answers, findings, minSeverity, json,
        };
        command.SetAction((parse, cancellationToken) =>
        {
            if (!Enum.TryParse<Severity>(parse.GetValue(minSeverity), ignoreCase: true, out var severity) || !Enum.IsDefined(severity))
            {
                Console.Error.WriteLine($"--min-severity '{parse.GetValue(minSeverity)}' is not one of low, medium, high, critical.");
                return Task.FromResult(64);
            }

            var answersPath = parse.GetValue(answers)!;
            var findingsPath = parse.GetValue(findings)!;
            var jsonPath = parse.GetValue(json);
            return host.Run(host.CreateBuilder(null), async (_, token) =>
            {
                foreach (var path in new[] { answersPath, findingsPath })
                {
                    if (!File.Exists(path))
                    {
                        await Console.Error.WriteLineAsync($"No file at '{path}'.");
                        return NoInput;
                    }
                }

                var result = Evaluator.Evaluate(answersPath, findingsPath, severity);
                Summary.Write(Terminal.Create(), result, severity);
                if (jsonPath is not null)
                {
                    await File.WriteAllTextAsync(jsonPath, Summary.Json(result), token);
                }

                return 0;
            }, cancellationToken);
        });
        return command;
    }
}

/// <summary>The verbs' console: Spectre.Console with progress bars on a terminal, plain lines when redirected.</summary>
internal sealed class Terminal
{
    private Terminal(IAnsiConsole console, bool interactive)
    {
        Console = console;
        Interactive = interactive;
    }

    public IAnsiConsole Console { get; }

    public bool Interactive { get; }

    public static Terminal Create()
    {
        var interactive = !System.Console.IsOutputRedirected && !System.Console.IsErrorRedirected;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = interactive ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = interactive ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = interactive ? InteractionSupport.Detect : InteractionSupport.No,
        });
        if (!interactive)
        {
            console.Profile.Width = 160;
        }

        return new Terminal(console, interactive);
    }

    public void WriteLine(string text) => Console.WriteLine(text);

    /// <summary>Runs <paramref name="work"/> with a progress bar (terminal) or a plain line per 10% on stderr (redirected).</summary>
    public T WithProgress<T>(string title, Func<Action<long, long>, T> work)
    {
        if (!Interactive)
        {
            var lastTenth = -1L;
            return work((done, total) =>
            {
                var tenth = total <= 0 ? 10 : done * 10 / total;
                if (tenth != lastTenth)
                {
                    lastTenth = tenth;
                    System.Console.Error.WriteLine($"{title}: {tenth * 10}%");
                }
            });
        }

        var result = default(T)!;
        Console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(context =>
            {
                var task = context.AddTask(title, maxValue: 1);
                result = work((done, total) =>
                {
                    task.MaxValue = Math.Max(1, total);
                    task.Value = Math.Min(done, task.MaxValue);
                });
                task.Value = task.MaxValue;
            });
        return result;
    }
}

/// <summary>The summary tables the verbs end with.</summary>
internal static class Summary
{
    public static void Write(Terminal terminal, AnalysisResult result, ScoringPolicy policy, string output)
    {
        var report = result.Report;
        var table = new Table().Title("analysis summary").AddColumn("what").AddColumn(new TableColumn("count").RightAligned());
        void Row(string what, string value) => table.AddRow(Markup.Escape(what), Markup.Escape(value));
        static string N(double value) => value.ToString("N0", CultureInfo.InvariantCulture);

        Row("files read", N(report.FilesRead));
        Row("lines read", N(report.LinesRead));
        Row("events scored", N(result.EventsScored));
        Row("lines/events rejected", N(report.RejectedTotal));
        foreach (var (reason, count) in report.ByReason())
        {
            Row($"  rejected: {RejectReasons.Name(reason)}", N(count));
        }

        foreach (var (action, count) in report.UnknownActions.OrderByDescending(a => a.Value).Take(10))
        {
            Row($"    unknown action '{action}'", N(count));
        }

        Row("users with baselines", N(result.Users));
        Row("users in learning mode (< " + policy.LearningMinActiveDays + " active days)", N(result.UsersInLearningMode));
        Row("users not in the directory", N(result.UsersNotInDirectory));
        if (result.OrganisationLearningEnds is { } ends)
        {
            // A new installation: only reasons that need no history spoke before this day (policy organisation_learning_days).
            Row("organisation learning until", $"{ends:yyyy-MM-dd} ({N(result.SignalsHeldBack)} signals held back)");
        }
        foreach (var severity in Enum.GetValues<Severity>().Reverse())
        {
            Row($"findings: {SeverityNames.Name(severity)}", N(result.FindingsBySeverity.GetValueOrDefault(severity)));
        }

        Row("time (s)", result.Elapsed.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture));
        Row("events/s", N(result.EventsPerSecond));
        if (result.FirstEvent is { } first && result.LastEvent is { } last)
        {
            Row("events from", first.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture));
            Row("events to", last.ToUniversalTime().ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture));
        }

        Row("findings written to", output);
        terminal.Console.Write(table);

        if (result.Risks.Count > 0)
        {
            var risks = new Table().Title("highest user risk (last 30 days, 7-day half-life)").AddColumn("user").AddColumn("risk").AddColumn("findings").AddColumn("top reason");
            foreach (var risk in result.Risks.Take(10))
            {
                risks.AddRow(Markup.Escape(risk.UserName is null ? risk.UserId : $"{risk.UserId} ({risk.UserName})"), risk.Risk.ToString("0", CultureInfo.InvariantCulture),
                    risk.Findings.ToString(CultureInfo.InvariantCulture), Markup.Escape(risk.TopReason));
            }

            terminal.Console.Write(risks);
        }
    }

    public static void Write(Terminal terminal, EvaluationResult r, Severity minSeverity)
    {
        static string P(double share) => (share * 100).ToString("0.0", CultureInfo.InvariantCulture) + "%";
        static string T(TimeSpan? t) => t is null ? "-" : t.Value.TotalHours.ToString("0.0", CultureInfo.InvariantCulture) + " h";
        var table = new Table().Title($"evaluation (alerts: severity >= {SeverityNames.Name(minSeverity)})").AddColumn("measure").AddColumn(new TableColumn("value").RightAligned());
        table.AddRow("insiders found", $"{r.InsidersFound} of {r.Insiders} ({P(r.Recall)})");
        table.AddRow("clean user-days flagged", $"{r.FlaggedCleanUserDays:N0} of {r.CleanUserDays:N0} ({P(r.FalsePositiveRate)})");
        table.AddRow("alerts per 1,000 users per day", r.AlertsPerThousandUserDays.ToString("0.00", CultureInfo.InvariantCulture));
        table.AddRow("median time to detect", T(r.MedianTimeToDetect));
        table.AddRow("true findings whose top reason names the injected signal", $"{r.TopReasonMatches} of {r.TrueFindings} ({P(r.TopReasonShare)})");
        terminal.Console.Write(table);

        var scenarios = new Table().Title("per scenario").AddColumn("scenario").AddColumn("found").AddColumn("median time to detect");
        foreach (var (scenario, found, total, ttd) in r.ByScenario())
        {
            scenarios.AddRow(scenario, $"{found} of {total}", T(ttd));
        }

        terminal.Console.Write(scenarios);
        if (r.FalsePositivesByReason.Count > 0)
        {
            var fps = new Table().Title("false-positive alerts by top reason / flagged clean user-days by user behaviour").AddColumn("top reason").AddColumn("alerts").AddColumn("behaviour").AddColumn("user-days");
            var reasons = r.FalsePositivesByReason.OrderByDescending(x => x.Value).ToList();
            var behaviours = r.FalsePositiveUserDaysByBehaviour.OrderByDescending(x => x.Value).ToList();
            for (var i = 0; i < Math.Max(reasons.Count, behaviours.Count); i++)
            {
                fps.AddRow(
                    i < reasons.Count ? reasons[i].Key : "", i < reasons.Count ? reasons[i].Value.ToString(CultureInfo.InvariantCulture) : "",
                    i < behaviours.Count ? behaviours[i].Key : "", i < behaviours.Count ? behaviours[i].Value.ToString(CultureInfo.InvariantCulture) : "");
            }

            terminal.Console.Write(fps);
        }

        var missed = r.Outcomes.Where(o => !o.Found).ToList();
        if (missed.Count > 0)
        {
            terminal.WriteLine("missed: " + string.Join(", ", missed.Select(o => $"{o.UserId} ({o.Scenario})")));
        }

        terminal.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"quality: recall {P(r.Recall)}, false-positive user-days {P(r.FalsePositiveRate)}, alerts/1000 users/day {r.AlertsPerThousandUserDays:0.00}, top reason match {P(r.TopReasonShare)}"));
    }

    public static string Json(EvaluationResult r) => JsonSerializer.Serialize(new
    {
        insiders = r.Insiders,
        insiders_found = r.InsidersFound,
        recall = r.Recall,
        clean_user_days = r.CleanUserDays,
        flagged_clean_user_days = r.FlaggedCleanUserDays,
        false_positive_rate = r.FalsePositiveRate,
        alerts = r.Alerts,
        alerts_per_1000_users_per_day = r.AlertsPerThousandUserDays,
        median_time_to_detect_hours = r.MedianTimeToDetect?.TotalHours,
        top_reason_match = r.TopReasonShare,
        scenarios = r.ByScenario().ToDictionary(s => s.Scenario, s => new { found = s.Found, total = s.Total, median_time_to_detect_hours = s.MedianTtd?.TotalHours }),
        missed = r.Outcomes.Where(o => !o.Found).Select(o => new { user_id = o.UserId, scenario = o.Scenario }),
        false_positives_by_reason = r.FalsePositivesByReason,
        false_positive_user_days_by_behaviour = r.FalsePositiveUserDaysByBehaviour,
    });
}
