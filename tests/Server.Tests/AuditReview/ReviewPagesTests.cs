using System.Net;

namespace CrmSecurity.Server.Tests.AuditReview;

/// <summary>The review pages over real HTTP with the sign-in cookie and anti-forgery tokens, as a browser uses them.</summary>
public sealed class ReviewPagesTests : IAsyncLifetime
{
    private ReviewHost _host = null!;

    public ValueTask InitializeAsync()
    {
        _host = ReviewHost.Start();
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync() => _host.DisposeAsync();

    [Fact]
    public async Task An_auditor_reveals_and_dismisses_on_the_pages_and_a_security_admin_is_refused_both()
    {
        var writer = await _host.WriterTokenAsync();
        var carolToken = await _host.UserTokenAsync("carol", ReviewHost.CarolPassword);
        await _host.PostNightExportAsync(writer, "paula", 1, 48_000, "p1");
        var id = (await _host.WaitForQueueItemAsync(carolToken, "", _ => true)).GetProperty("id").GetString()!;
        using var carol = await SignedInAsync("carol", ReviewHost.CarolPassword);
        using var dave = await SignedInAsync("dave", ReviewHost.DavePassword);

        var queue = await carol.GetStringAsync(new Uri("review", UriKind.Relative), ReviewHost.Cancel);
        var page = await carol.GetStringAsync(new Uri($"review/findings/{id}", UriKind.Relative), ReviewHost.Cancel);
        using var reveal = await PostAsync(carol, $"review/findings/{id}?handler=Reveal", page, new() { ["RevealReason"] = "case 42" });
        var revealed = await reveal.Content.ReadAsStringAsync(ReviewHost.Cancel);
        using var dismiss = await PostAsync(carol, $"review/findings/{id}?handler=Close", page, new() { ["Status"] = "dismissed", ["Disposition"] = "false_positive", ["Note"] = "payroll run" });
        var after = await carol.GetStringAsync(new Uri($"review/findings/{id}", UriKind.Relative), ReviewHost.Cancel);

        Assert.Contains($"data-finding=\"{id}\"", queue, StringComparison.Ordinal);
        Assert.DoesNotContain("paula", queue, StringComparison.Ordinal);
        Assert.DoesNotContain("paula", page, StringComparison.Ordinal);
        Assert.Contains("Evidence timeline", page, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, reveal.StatusCode);
        Assert.Contains("<strong>paula</strong>", revealed, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Redirect, dismiss.StatusCode);
        Assert.Contains("dismissed (false_positive)", after, StringComparison.Ordinal);
        Assert.Contains("payroll run", after, StringComparison.Ordinal);

        var davePage = await dave.GetStringAsync(new Uri($"review/findings/{id}", UriKind.Relative), ReviewHost.Cancel);
        var daveQueue = await dave.GetStringAsync(new Uri("review?status=dismissed", UriKind.Relative), ReviewHost.Cancel);
        using var daveReveal = await PostAsync(dave, $"review/findings/{id}?handler=Reveal", daveQueue, new() { ["RevealReason"] = "curious" });
        using var daveAcknowledge = await PostAsync(dave, $"review/findings/{id}?handler=Close", daveQueue, new() { ["Status"] = "resolved", ["Disposition"] = "true_positive" });

        Assert.DoesNotContain("id=\"reveal\"", davePage, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, daveReveal.StatusCode);
        Assert.DoesNotContain("paula", await daveReveal.Content.ReadAsStringAsync(ReviewHost.Cancel), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, daveAcknowledge.StatusCode);
        var actions = (await _host.AuditEntriesAsync()).Where(e => e.TargetId == id).Select(e => (e.Action, e.ActorName)).ToList();
        Assert.Equal([("finding.reveal", "carol"), ("finding.status", "carol"), ("finding.note", "carol")], actions);
    }

    [Fact]
    public async Task Bulk_acknowledge_on_the_queue_page_moves_the_selected_findings_and_says_how_many()
    {
        var writer = await _host.WriterTokenAsync();
        var carolToken = await _host.UserTokenAsync("carol", ReviewHost.CarolPassword);
        await _host.PostNightExportAsync(writer, "quinn", 1, 48_000, "p2");
        var id = (await _host.WaitForQueueItemAsync(carolToken, "", _ => true)).GetProperty("id").GetString()!;
        using var carol = await SignedInAsync("carol", ReviewHost.CarolPassword);
        var queue = await carol.GetStringAsync(new Uri("review", UriKind.Relative), ReviewHost.Cancel);

        using var bulk = await PostAsync(carol, "review?handler=Bulk", queue, new() { ["Selected"] = id, ["BulkAction"] = "acknowledge" });
        var after = await carol.GetStringAsync(new Uri("review?status=acknowledged", UriKind.Relative), ReviewHost.Cancel);

        Assert.Equal(HttpStatusCode.Redirect, bulk.StatusCode);
        Assert.Contains("acknowledge: 1 finding(s) done.", after, StringComparison.Ordinal);
        Assert.Contains($"data-finding=\"{id}\"", after, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_new_installations_queue_says_it_is_still_learning_and_until_when_while_a_fact_based_finding_still_arrives()
    {
        // Cold start: the service's first events arrived yesterday. The night export breaks the contact limit (a fact),
        // so it is raised; what would judge it against history (peers, hours) waits, and the queue tells carol why and until when.
        var writer = await _host.WriterTokenAsync();
        var carolToken = await _host.UserTokenAsync("carol", ReviewHost.CarolPassword);
        await _host.PostNightExportAsync(writer, "rita", 1, 48_000, "p4");
        var finding = await _host.WaitForQueueItemAsync(carolToken, "", _ => true);
        using var carol = await SignedInAsync("carol", ReviewHost.CarolPassword);

        var queue = await carol.GetStringAsync(new Uri("review", UriKind.Relative), ReviewHost.Cancel);

        var ends = DateOnly.FromDateTime(DateTime.UtcNow).AddDays(-1).AddDays(14);
        Assert.Contains("id=\"organisation-learning\"", queue, StringComparison.Ordinal);
        Assert.Contains("1 of 14 days of its own history", queue, StringComparison.Ordinal); // the night export came before carol's sign-in
        Assert.Contains($"<time datetime=\"{ends:yyyy-MM-dd}\">", queue, StringComparison.Ordinal);
        var (_, detail) = await _host.GetAsync(carolToken, $"analyzer/review/findings/{finding.GetProperty("id").GetString()}");
        Assert.Equal(["bulk_export.sensitive_limit"], detail.GetProperty("reasons").EnumerateArray().Select(r => r.GetProperty("code").GetString()));
    }

    [Fact]
    public async Task A_post_without_the_anti_forgery_token_is_refused()
    {
        using var carol = await SignedInAsync("carol", ReviewHost.CarolPassword);

        using var response = await carol.PostAsync(new Uri("review/findings/x?handler=Reveal", UriKind.Relative), new FormUrlEncodedContent([]), ReviewHost.Cancel);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    private async Task<HttpClient> SignedInAsync(string user, string password)
    {
        var http = _host.CreateClient();
        using var login = await ReviewHost.SignInAsync(http, user, password, "/review");
        Assert.Equal(HttpStatusCode.Redirect, login.StatusCode);
        return http;
    }

    private static Task<HttpResponseMessage> PostAsync(HttpClient http, string path, string page, Dictionary<string, string> form)
    {
        form["__RequestVerificationToken"] = ReviewHost.AntiForgeryToken(page);
        return http.PostAsync(new Uri(path, UriKind.Relative), new FormUrlEncodedContent(form), ReviewHost.Cancel);
    }
}
