using CrmSecurity.Crypto.Events;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Keys.Insecure;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Samples.Crm.Events;

namespace CrmSecurity.Samples.Crm.Data;

/// <summary>
/// The sample's keys: a keyring file whose data keys are wrapped (AES-KWP) by a master key from
/// <c>CRM_SAMPLE_MASTER_KEY</c>, or, in Development only, by a generated key file next to the database.
/// </summary>
public static class SampleCrypto
{
    public const string MasterKeyVariable = "CRM_SAMPLE_MASTER_KEY";

    public static FieldEncryption Open(string dataDirectory, bool development, AccessEventSender events, ILogger logger)
    {
        Directory.CreateDirectory(dataDirectory);
        LocalMasterKey master;
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable(MasterKeyVariable)))
        {
            master = LocalMasterKey.FromEnvironment(MasterKeyVariable);
        }
        else if (development)
        {
            var keyFile = Path.Combine(dataDirectory, "development-master.key");
            if (!File.Exists(keyFile))
            {
                using var generated = LocalMasterKey.Generate();
                File.WriteAllText(keyFile, InsecureCleartextKeyMaterial.ExportBase64(generated));
                if (!OperatingSystem.IsWindows())
                {
                    File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                }

                Log.DevelopmentKey(logger, keyFile, MasterKeyVariable);
            }

            master = LocalMasterKey.FromFile(keyFile);
        }
        else
        {
            throw new InvalidOperationException($"{MasterKeyVariable} is not set: outside Development the sample needs a master key (openssl rand -base64 32).");
        }

        var keyringPath = Path.Combine(dataDirectory, "keyring.json");
        Keyring keyring;
        if (File.Exists(keyringPath))
        {
            keyring = Keyring.Load(keyringPath, master);
        }
        else
        {
            keyring = Keyring.CreateNew();
            keyring.Save(keyringPath, master);
        }

        return new FieldEncryption(keyring, subjectKeys: null, new ForwardingSink(events));
    }

    /// <summary>
    /// Sends the library's own events (every decrypt and refusal as rows are read, shreds) on with the sample's, in the
    /// authorization model's names (entity <c>contact</c>, field <c>email</c>), so the analyzer's mass-decrypt detector
    /// counts them against the user who read.
    /// </summary>
    private sealed class ForwardingSink(AccessEventSender events) : ICryptoEventSink
    {
        public ValueTask WriteAsync(CryptoAccessEvent accessEvent, CancellationToken cancellationToken)
        {
            events.Write(new AccessEvent
            {
                EventId = accessEvent.EventId,
                Timestamp = accessEvent.Timestamp,
                UserId = accessEvent.UserId,
                Action = accessEvent.Action,
                Entity = accessEvent.Entity is { } table ? Security.ContactDecryptAuthorizer.EntityOf(table) : null,
                RecordId = accessEvent.RecordId,
                RecordCount = accessEvent.RecordCount,
                Fields = accessEvent.Fields?.Select(Security.ContactDecryptAuthorizer.FieldOf).ToList(),
                Outcome = accessEvent.Outcome,
                ClientId = accessEvent.ClientId,
                SourceIp = accessEvent.SourceIp,
                Tenant = accessEvent.Tenant,
                Details = accessEvent.Details,
            });
            return ValueTask.CompletedTask;
        }
    }
}
