using CrmSecurity.Crypto.BlindIndexes;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Keys;

namespace CrmSecurity.Crypto.Tests.BlindIndexes;

public sealed class BlindIndexTests : IDisposable
{
    private static readonly FieldContext Email = new("acme", "contacts", "email");
    private readonly Keyset _keyset = KeysetBuilder.CreateNew("blind-index").Build();

    [Theory]
    [InlineData("  Alice@Example.COM ", "alice@example.com")]
    [InlineData("ＡＬＩＣＥ@example.com", "alice@example.com")]
    public void Email_addresses_are_trimmed_folded_and_lower_cased(string raw, string normalised) =>
        Assert.Equal(normalised, Normaliser.Email.Normalise(raw));

    [Theory]
    [InlineData("nobody-at-example.com")]
    [InlineData("@example.com")]
    [InlineData("a@b@c")]
    [InlineData("alice@")]
    public void Values_that_are_not_email_addresses_are_refused_without_echoing_them(string raw)
    {
        var error = Assert.Throws<FormatException>(() => Normaliser.Email.Normalise(raw));

        Assert.DoesNotContain(raw.Trim(), error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("+44 20 7946 0018", "+442079460018")]
    [InlineData("0044 (20) 7946-0018", "+442079460018")]
    [InlineData("020 7946 0018", "+442079460018")]
    [InlineData("+1.212.555.0100", "+12125550100")]
    public void Phone_numbers_become_E164(string raw, string e164) =>
        Assert.Equal(e164, Normaliser.PhoneE164("44").Normalise(raw));

    [Theory]
    [InlineData("020 7946 0018", null)]
    [InlineData("+44 20 79x6 0018", "44")]
    [InlineData("+1234", "44")]
    [InlineData("+1234567890123456", "44")]
    public void Phone_numbers_without_a_country_code_or_with_a_bad_length_are_refused(string raw, string? defaultCountryCode) =>
        Assert.Throws<FormatException>(() => Normaliser.PhoneE164(defaultCountryCode).Normalise(raw));

    [Fact]
    public void National_ids_lose_separators_and_case() =>
        Assert.Equal("AB123456C", Normaliser.NationalId.Normalise("ab 12-34.56/c"));

    [Fact]
    public void Equal_values_written_differently_give_the_same_index_and_other_values_another()
    {
        using var index = _keyset.CreateBlindIndex(Email, new BlindIndexDefinition("email", 32, Normaliser.Email));

        Assert.Equal(index.Compute("alice@example.com"), index.Compute(" ALICE@example.com"));
        Assert.NotEqual(index.Compute("alice@example.com"), index.Compute("bob@example.com"));
    }

    [Fact]
    public void The_same_value_indexes_differently_per_column_index_name_and_tenant()
    {
        var definition = new BlindIndexDefinition("email", 64, Normaliser.Email);
        using var first = _keyset.CreateBlindIndex(Email, definition);
        using var otherColumn = _keyset.CreateBlindIndex(new FieldContext("acme", "contacts", "work_email"), definition);
        using var otherTenant = _keyset.CreateBlindIndex(new FieldContext("globex", "contacts", "email"), definition);
        using var otherName = _keyset.CreateBlindIndex(Email, new BlindIndexDefinition("email2", 64, Normaliser.Email));

        var value = first.Compute("alice@example.com");

        Assert.NotEqual(value, otherColumn.Compute("alice@example.com"));
        Assert.NotEqual(value, otherTenant.Compute("alice@example.com"));
        Assert.NotEqual(value, otherName.Compute("alice@example.com"));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(12)]
    [InlineData(16)]
    [InlineData(23)]
    public void Only_the_configured_number_of_bits_is_kept(int bits)
    {
        using var index = _keyset.CreateBlindIndex(Email, new BlindIndexDefinition("email", bits, Normaliser.Email));

        for (var i = 0; i < 50; i++)
        {
            var value = index.Compute($"user{i}@example.com");
            Assert.Equal((bits + 7) / 8, value.Length);
            var spare = (value.Length * 8) - bits;
            Assert.Equal(0, value[^1] & ((1 << spare) - 1));
        }
    }

    [Fact]
    public void A_last_four_index_matches_a_typed_fragment_of_the_number()
    {
        using var index = _keyset.CreateBlindIndex(new FieldContext("acme", "contacts", "phone"), new BlindIndexDefinition("last4", 16, Normaliser.PhoneE164("44"), IndexTransform.Last(4)));

        Assert.Equal(index.Compute("+1 212 555 0100"), index.ComputeFragment("555-0100"));
        Assert.Equal(index.Compute("+1 212 555 0100"), index.ComputeFragment("0100"));
        Assert.NotEqual(index.Compute("+1 212 555 0100"), index.ComputeFragment("0101"));
    }

    [Fact]
    public void A_prefix_index_matches_values_sharing_the_prefix()
    {
        using var index = _keyset.CreateBlindIndex(Email, new BlindIndexDefinition("prefix3", 16, Normaliser.Email, IndexTransform.Prefix(3)));

        Assert.Equal(index.Compute("alice@example.com"), index.Compute("ALIstair@example.org"));
        Assert.Equal(index.Compute("alice@example.com"), index.ComputeFragment("Ali"));
    }

    [Fact]
    public void The_planner_accepts_coincidences_between_2_and_the_square_root_of_the_rows()
    {
        var plan = BlindIndexPlanner.Evaluate(1_000_000, [new BlindIndexDefinition("email", 16, Normaliser.Email)]);

        Assert.True(plan.IsAcceptable);
        Assert.Equal(1_000_000 / 65536.0, plan.ExpectedCoincidences, 6);
        Assert.Contains("Accepted", plan.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void The_planner_refuses_indexes_that_together_identify_rows()
    {
        // Each alone is fine (12 and 8 bits for 100,000 rows); together 20 bits leave C < 2.
        var plan = BlindIndexPlanner.Evaluate(100_000, [
            new BlindIndexDefinition("email", 12, Normaliser.Email),
            new BlindIndexDefinition("prefix", 8, Normaliser.Email, IndexTransform.Prefix(4)),
        ]);

        Assert.False(plan.IsAcceptable);
        Assert.Contains("C < 2", plan.Explanation, StringComparison.Ordinal);
        Assert.Contains("at most 15 bits", plan.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void The_planner_refuses_indexes_too_short_to_be_useful()
    {
        var plan = BlindIndexPlanner.Evaluate(1_000_000, [new BlindIndexDefinition("email", 4, Normaliser.Email)]);

        Assert.False(plan.IsAcceptable);
        Assert.Contains("sqrt(R)", plan.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void The_planner_counts_a_small_input_domain_not_the_bits_kept()
    {
        // Last 4 digits have only 10,000 values (13.3 bits): keeping 32 bits does not make them more identifying.
        var plan = BlindIndexPlanner.Evaluate(1_000_000, [new BlindIndexDefinition("last4", 32, Normaliser.PhoneE164(), IndexTransform.Last(4))]);

        Assert.Equal(Math.Log2(10_000), plan.EffectiveBits, 6);
        Assert.True(plan.IsAcceptable);
    }

    public void Dispose() => _keyset.Dispose();
}
