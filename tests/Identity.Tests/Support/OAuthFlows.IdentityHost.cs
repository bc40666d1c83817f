using System.Text.Json;
using CrmSecurity.Identity.Tests.Support;

namespace CrmSecurity.Tests.Support;

/// <summary>The flows of the shared <see cref="OAuthFlows"/> on an <see cref="IdentityHost"/>.</summary>
public static partial class OAuthFlows
{
    /// <summary>The whole code flow for alice with demo-crm; returns the token response.</summary>
    public static async Task<JsonElement> SignInAliceAsync(IdentityHost host, string scope = "openid profile email roles offline_access crm.api")
    {
        using var http = host.CreateClient();
        return await SignInAsync(http, "alice", AlicePassword, scope);
    }
}
