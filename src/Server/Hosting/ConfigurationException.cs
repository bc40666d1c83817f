namespace CrmSecurity.Server.Hosting;

/// <summary>
/// A setting, or the database a setting points at, that this build cannot run with. The host stops with exit code 78
/// (EX_CONFIG) and prints the message, which names the setting and says how to fix it; never a secret value.
/// </summary>
internal sealed class ConfigurationException(string message) : InvalidOperationException(message);
