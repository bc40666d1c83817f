using CrmSecurity.Server.Tests.Hosting;

namespace CrmSecurity.Server.Tests.Docs;

/// <summary>
/// The docs pages whose command blocks run against the demo host share one host (one start for all of them); their
/// blocks change different things (a role's cell, bob's tokens, events of a user "ann"), so they do not disturb each other.
/// </summary>
[CollectionDefinition(Name)]
public sealed class DemoHostDocs : ICollectionFixture<DemoHost>
{
    public const string Name = "docs commands on one demo host";
}
