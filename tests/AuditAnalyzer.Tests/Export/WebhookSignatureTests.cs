using System.Globalization;
using CrmSecurity.AuditAnalyzer.Export;

namespace CrmSecurity.AuditAnalyzer.Tests.Export;

public sealed class WebhookSignatureTests
{
    // 32 bytes, base64 after whsec_, as Standard Webhooks libraries take secrets.
    private const string Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw+O8OTPdb2YU=";
    private const string Id = "msg_f-0123456789abcdef_638000000000000000";
    private const string Body = """{"type":"crm_security.finding.changed","data":{"event":{"id":"f-1"}}}""";
    private static readonly DateTimeOffset Now = new(2026, 11, 20, 10, 0, 0, TimeSpan.Zero);
    private static readonly string Timestamp = Now.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);

    private static string Signature => WebhookSignature.Sign(Secret, Id, Now.ToUnixTimeSeconds(), Body);

    [Fact]
    public void A_signed_call_verifies()
    {
        Assert.StartsWith("v1,", Signature, StringComparison.Ordinal);
        Assert.True(WebhookSignature.Verify(Secret, Id, Timestamp, Body, Signature, Now.AddSeconds(30)));
    }

    [Fact]
    public void The_signature_is_hmac_sha256_over_id_timestamp_and_body_with_the_base64_key()
    {
        var key = Convert.FromBase64String("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw+O8OTPdb2YU=");
        var expected = "v1," + Convert.ToBase64String(System.Security.Cryptography.HMACSHA256.HashData(key, System.Text.Encoding.UTF8.GetBytes($"{Id}.{Timestamp}.{Body}")));

        Assert.Equal(expected, Signature);
    }

    [Fact]
    public void A_tampered_body_id_or_timestamp_is_rejected()
    {
        Assert.False(WebhookSignature.Verify(Secret, Id, Timestamp, Body.Replace("f-1", "f-2", StringComparison.Ordinal), Signature, Now));
        Assert.False(WebhookSignature.Verify(Secret, Id + "x", Timestamp, Body, Signature, Now));
        Assert.False(WebhookSignature.Verify(Secret, Id, (Now.ToUnixTimeSeconds() + 1).ToString(CultureInfo.InvariantCulture), Body, Signature, Now));
    }

    [Fact]
    public void A_timestamp_outside_the_tolerance_is_rejected_even_with_a_valid_signature()
    {
        Assert.False(WebhookSignature.Verify(Secret, Id, Timestamp, Body, Signature, Now.AddMinutes(6)));
        Assert.False(WebhookSignature.Verify(Secret, Id, Timestamp, Body, Signature, Now.AddMinutes(-6)));
        Assert.True(WebhookSignature.Verify(Secret, Id, Timestamp, Body, Signature, Now.AddMinutes(6), TimeSpan.FromMinutes(10)));
        Assert.False(WebhookSignature.Verify(Secret, Id, "yesterday", Body, Signature, Now));
    }

    [Fact]
    public void Another_secret_or_a_malformed_header_does_not_verify_and_one_good_signature_among_several_does()
    {
        Assert.False(WebhookSignature.Verify("whsec_" + Convert.ToBase64String(new byte[32]), Id, Timestamp, Body, Signature, Now));
        Assert.False(WebhookSignature.Verify(Secret, Id, Timestamp, Body, "v1,not-base64!", Now));
        Assert.False(WebhookSignature.Verify(Secret, Id, Timestamp, Body, "v2," + Signature[3..], Now));
        Assert.False(WebhookSignature.Verify(Secret, Id, Timestamp, Body, "", Now));
        Assert.True(WebhookSignature.Verify(Secret, Id, Timestamp, Body, "v1,AAAA v1a,xyz " + Signature, Now));
    }
}
