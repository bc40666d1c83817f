using CrmSecurity.Identity.Authorization.Model;
using static CrmSecurity.Identity.Tests.Authorization.SampleModel;

namespace CrmSecurity.Identity.Tests.Authorization;

/// <summary>The encryption service's decrypt permission: only read_unmasked or update shows a value in clear.</summary>
public sealed class UnmaskedReadTests
{
    [Fact]
    public void Read_unmasked_and_update_grants_allow_a_decrypt_and_say_which()
    {
        var model = Build();

        var sam = model.UnmaskedRead(Sam, "crm-app", "contact", "email");
        Assert.True(sam.Allowed, sam.Reason);
        Assert.Contains("read unmasked", sam.Reason, StringComparison.Ordinal);

        var alice = model.UnmaskedRead(Alice, "crm-app", "contact", "email");
        Assert.True(alice.Allowed, alice.Reason);
        Assert.Contains("update", alice.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_masked_or_hidden_field_is_refused_and_the_reason_says_which()
    {
        var model = Build();

        var masked = model.UnmaskedRead(Sam, "crm-app", "contact", "national_id");
        Assert.False(masked.Allowed);
        Assert.Contains("masked", masked.Reason, StringComparison.Ordinal);

        var hidden = model.UnmaskedRead(Alice, "crm-app", "contact", "national_id");
        Assert.False(hidden.Allowed);
        Assert.Contains("hidden", hidden.Reason, StringComparison.Ordinal);

        Assert.False(model.UnmaskedRead(Dan, "crm-app", "contact", "email").Allowed);
    }

    [Fact]
    public void Unknown_names_disabled_users_and_clients_without_an_application_user_are_refused()
    {
        var builder = Builder();
        builder.AddUser(User("u-gone", "gone", "support", null, ["support_agent"], ["support_pii"], disabled: true));
        builder.AddUser(new UserDefinition("u-app", "crm-batch", "CRM batch", "support", null, ["support_agent"], ["support_pii"], ApplicationClientId: "crm-batch"));
        var model = builder.Build(1);

        Assert.Contains("unknown field 'iban'", model.UnmaskedRead(Sam, "crm-app", "contact", "iban").Reason, StringComparison.Ordinal);
        Assert.Contains("unknown entity 'invoice'", model.UnmaskedRead(Sam, "crm-app", "invoice", "email").Reason, StringComparison.Ordinal);
        Assert.Contains("not in the authorization model", model.UnmaskedRead("u-nobody", "crm-app", "contact", "email").Reason, StringComparison.Ordinal);
        Assert.Contains("disabled", model.UnmaskedRead("u-gone", "crm-app", "contact", "email").Reason, StringComparison.Ordinal);
        Assert.False(model.UnmaskedRead(null, "crm-app", "contact", "email").Allowed);

        // A client's own token (sub = client_id) decides as the application user bound to the client, or not at all.
        Assert.True(model.UnmaskedRead("crm-batch", "crm-batch", "contact", "email").Allowed);
        Assert.Contains("no application user", model.UnmaskedRead("crm-app", "crm-app", "contact", "email").Reason, StringComparison.Ordinal);
    }
}
