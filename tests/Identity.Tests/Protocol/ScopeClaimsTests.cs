using System.Security.Claims;
using CrmSecurity.Shared;

namespace CrmSecurity.Identity.Tests.Protocol;

/// <summary>
/// The one scope check of the bearer APIs (src/Shared/ScopeClaims.cs): RFC 8693 §4.2 / RFC 9068 §2.2.3, one
/// space-delimited <c>scope</c> string, case-sensitive values (RFC 6749 §3.3).
/// </summary>
public sealed class ScopeClaimsTests
{
    private static ClaimsPrincipal Token(params (string Type, string Value)[] claims) =>
        new(new ClaimsIdentity(claims.Select(c => new Claim(c.Type, c.Value)), "Bearer"));

    [Theory]
    [InlineData("identity.admin", true)]
    [InlineData("openid identity.admin findings:read", true)]
    [InlineData("  openid   identity.admin ", true)]
    [InlineData("Identity.Admin", false)]
    [InlineData("identity.administrator", false)]
    [InlineData("openid,identity.admin", false)]
    [InlineData("", false)]
    public void A_scope_is_one_of_the_space_delimited_case_sensitive_values(string scope, bool granted) =>
        Assert.Equal(granted, ScopeClaims.HasScope(Token(("scope", scope)), "identity.admin"));

    [Fact]
    public void A_token_without_a_scope_claim_grants_nothing() =>
        Assert.False(ScopeClaims.HasScope(Token(("sub", "alice")), "identity.admin"));

    [Fact]
    public void The_scp_claim_is_not_read() =>
        Assert.False(ScopeClaims.HasScope(Token(("scp", "identity.admin")), "identity.admin"));

    [Fact]
    public void A_scope_claim_given_more_than_once_is_not_a_scope_string_and_grants_nothing()
    {
        Assert.False(ScopeClaims.HasScope(Token(("scope", "identity.admin"), ("scope", "openid")), "identity.admin"));
        Assert.False(ScopeClaims.HasScope(Token(("scope", "openid"), ("scope", "identity.admin")), "identity.admin"));
    }
}
