using System.Net;
using CrmSecurity.Security.Tests.Support;
using CrmSecurity.Tests.Support;
using static CrmSecurity.Security.Tests.Analyzer.AnalyzerCalls;

namespace CrmSecurity.Security.Tests.Analyzer;

/// <summary>
/// Red-team finding 7: reviewers reviewed themselves. carol, an auditor, dismissed and suppressed (until year 9999) a
/// finding about herself, and peer groups of one member named the user behind every pseudonym without a reveal. Now
/// every review action on a finding about the caller is refused with 403 saying why, a suppression never covers its
/// maker, suppressions last at most AuditAnalyzer:Review:MaxSuppressionDays, and a peer group smaller than
/// AuditAnalyzer:Review:MinPeerGroupSize is withheld until a reveal.
/// </summary>
public sealed class SelfReviewTests(ReviewerHost host) : IClassFixture<ReviewerHost>
{
    [Fact]
    public async Task Carol_cannot_dismiss_note_assign_or_reveal_a_finding_about_herself_through_the_api()
    {
        var id = await host.FindingAboutAsync(await Personas.UserIdAsync(host, "carol"), "carol-api");
        var carol = await host.ReviewTokenAsync("carol");

        var dismiss = await PostJsonAsync(host, carol, $"analyzer/review/findings/{id}/status", new { status = "dismissed", disposition = "false_positive", note = "that was me, fine" });
        var note = await PostJsonAsync(host, carol, $"analyzer/review/findings/{id}/notes", new { text = "nothing to see" });
        var assign = await PostJsonAsync(host, carol, $"analyzer/review/findings/{id}/assign", new { assignee = "someone" });
        var reveal = await PostJsonAsync(host, carol, $"analyzer/review/findings/{id}/reveal", new { reason = "curious" });
        var bulk = await PostJsonAsync(host, carol, "analyzer/review/findings/bulk", new { ids = new[] { id }, action = "status", status = "dismissed", disposition = "false_positive" });

        foreach (var (status, body) in new[] { dismiss, note, assign, reveal })
        {
            Assert.Equal(HttpStatusCode.Forbidden, status);
            Assert.Contains("about you", body.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        Assert.Equal(0, bulk.Body.GetProperty("succeeded").GetInt32());
        Assert.Equal(403, Assert.Single(bulk.Body.GetProperty("results").EnumerateArray()).GetProperty("status").GetInt32());
        Assert.Equal("new", await host.StatusOfAsync(id));
        Assert.Empty(await host.AuditAsync(id));
    }

    [Fact]
    public async Task Carol_cannot_suppress_herself_and_a_wide_suppression_she_makes_does_not_cover_her()
    {
        var carolId = await Personas.UserIdAsync(host, "carol");
        var own = await host.FindingAboutAsync(carolId, "carol-sup");
        var other = await host.FindingAboutAsync(await Personas.UserIdAsync(host, "dave"), "dave-sup");
        var carol = await host.ReviewTokenAsync("carol");
        var (_, detail) = await GetAsync(host, carol, $"analyzer/review/findings/{own}");
        var pseudonym = detail.GetProperty("user").GetString();
        var expires = DateTimeOffset.UtcNow.AddDays(30);

        var self = await PostJsonAsync(host, carol, "analyzer/review/suppressions",
            new { scope_kind = "user", scope_value = pseudonym, reason = "known behaviour", expires_at = expires });
        var wide = await PostJsonAsync(host, carol, "analyzer/review/suppressions",
            new { scope_kind = "entity", scope_value = "contact", reason = "campaign week", expires_at = expires, apply_to_existing = true });

        Assert.Equal(HttpStatusCode.Forbidden, self.Status);
        Assert.Equal(HttpStatusCode.Created, wide.Status);
        Assert.Equal("new", await host.StatusOfAsync(own));
        Assert.Equal("suppressed", await host.StatusOfAsync(other));
        Assert.Empty(await host.QueryAsync("SELECT id FROM analyzer_suppressions WHERE scope_value = $u", ("$u", carolId)));

        // Close it again so it does not hide the other tests' findings.
        var revoked = await PostJsonAsync(host, carol, $"analyzer/review/suppressions/{wide.Body.GetProperty("suppression").GetProperty("id").GetString()}/revoke", null);
        Assert.Equal(HttpStatusCode.NoContent, revoked.Status);
    }

    [Theory]
    [InlineData("9999-12-31T00:00:00Z")]
    [InlineData(null)]
    public async Task A_suppression_without_an_end_or_beyond_the_lifetime_cap_is_refused_naming_expires_at(string? expiresAt)
    {
        var carol = await host.ReviewTokenAsync("carol");

        var (status, body) = await PostJsonAsync(host, carol, "analyzer/review/suppressions",
            new { scope_kind = "detector", scope_value = "odd_hours", reason = "forever", expires_at = expiresAt });

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.True(body.GetProperty("errors").TryGetProperty("expires_at", out _), body.ToString());
    }

    [Fact]
    public async Task A_suppression_made_before_the_cap_stops_applying_once_it_is_older_than_the_cap()
    {
        // As the red team left it: created long ago, "until 9999", written straight into the table.
        var erinId = await Personas.UserIdAsync(host, "erin");
        var created = DateTimeOffset.UtcNow.AddDays(-200).UtcTicks;
        await host.ExecuteAsync(
            "INSERT INTO analyzer_suppressions (id, owner, scope_kind, scope_value, reason, created_by, created_ticks, expires_ticks) VALUES ('sup-old-9999', 'x', 'user', $u, 'forever', 'x', $c, $e)",
            ("$u", erinId), ("$c", created), ("$e", DateTimeOffset.MaxValue.UtcTicks));

        var id = await host.FindingAboutAsync(erinId, "erin-old-sup", daysAgo: 3);

        Assert.Equal("new", await host.StatusOfAsync(id));
        var (_, list) = await GetAsync(host, await host.ReviewTokenAsync("carol"), "analyzer/review/suppressions");
        Assert.False(list.EnumerateArray().Single(s => s.GetProperty("suppression").GetProperty("id").GetString() == "sup-old-9999").GetProperty("active").GetBoolean());
    }

    [Fact]
    public async Task Carol_cannot_dismiss_a_finding_about_herself_on_the_review_pages()
    {
        var id = await host.FindingAboutAsync(await Personas.UserIdAsync(host, "carol"), "carol-page");
        using var browser = await host.BrowserAsync("carol");
        var page = await browser.GetStringAsync(new Uri($"review/findings/{id}", UriKind.Relative), Personas.Cancel);
        var queue = await browser.GetStringAsync(new Uri("review", UriKind.Relative), Personas.Cancel);

        // The page offers no review form for it; a forged post with a valid anti-forgery token (from the queue) is refused.
        using var forged = await browser.PostAsync(new Uri($"review/findings/{id}?handler=Close", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Status"] = "dismissed",
            ["Disposition"] = "false_positive",
            ["__RequestVerificationToken"] = OAuthFlows.AntiForgeryToken(queue),
        }), Personas.Cancel);
        using var bulk = await browser.PostAsync(new Uri("review?handler=Bulk", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Selected"] = id,
            ["BulkAction"] = "acknowledge",
            ["__RequestVerificationToken"] = OAuthFlows.AntiForgeryToken(queue),
        }), Personas.Cancel);

        Assert.Contains("id=\"about-you\"", page, StringComparison.Ordinal);
        Assert.DoesNotContain("id=\"close\"", page, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, forged.StatusCode);
        Assert.Contains("about you", await forged.Content.ReadAsStringAsync(Personas.Cancel), StringComparison.Ordinal);
        Assert.Equal("new", await host.StatusOfAsync(id));
        Assert.Empty(await host.AuditAsync(id));
    }

    [Fact]
    public async Task A_peer_group_of_one_is_not_named_before_a_reveal_and_is_after_it()
    {
        // frank is the only member of Finance: "Finance/finance" would name him.
        var id = await host.FindingAboutAsync(await Personas.UserIdAsync(host, "frank"), "frank-peers");
        var carol = await host.ReviewTokenAsync("carol");

        var (_, detail) = await GetAsync(host, carol, $"analyzer/review/findings/{id}");
        var (_, queue) = await GetAsync(host, carol, "analyzer/review/findings?page_size=200");
        using var browser = await host.BrowserAsync("carol");
        var page = await browser.GetStringAsync(new Uri($"review/findings/{id}", UriKind.Relative), Personas.Cancel);
        var (revealStatus, revealed) = await PostJsonAsync(host, carol, $"analyzer/review/findings/{id}/reveal", new { reason = "investigating the night export" });

        Assert.False(detail.TryGetProperty("peer_group", out var group) && group.ValueKind == System.Text.Json.JsonValueKind.String, detail.ToString());
        Assert.DoesNotContain("finance", detail.ToString(), StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("finance", queue.ToString(), StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Finance/", page, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(HttpStatusCode.OK, revealStatus);
        Assert.Equal("frank", revealed.GetProperty("user_name").GetString());
        Assert.StartsWith("Finance", revealed.GetProperty("peer_group").GetString(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_reveal_without_a_reason_is_refused_naming_reason_and_a_reason_is_in_the_audit_trail()
    {
        var id = await host.FindingAboutAsync(await Personas.UserIdAsync(host, "erin"), "erin-reason");
        var carol = await host.ReviewTokenAsync("carol");

        var (without, body) = await PostJsonAsync(host, carol, $"analyzer/review/findings/{id}/reveal", new { });
        var (with, _) = await PostJsonAsync(host, carol, $"analyzer/review/findings/{id}/reveal", new { reason = "ticket SEC-1234" });

        Assert.Equal(HttpStatusCode.BadRequest, without);
        Assert.True(body.GetProperty("errors").TryGetProperty("reason", out _), body.ToString());
        Assert.Equal(HttpStatusCode.OK, with);
        var entry = Assert.Single(await host.AuditAsync(id));
        Assert.Equal("finding.reveal", entry.Action);
        Assert.Contains("SEC-1234", entry.After, StringComparison.Ordinal);
        Assert.DoesNotContain("erin", entry.After, StringComparison.OrdinalIgnoreCase);
    }
}
