using System.Text.Json;

namespace CrmSecurity.Crypto.Tests.Support;

/// <summary>
/// Reads Wycheproof vector files in place from <c>../shared/testvectors/wycheproof/</c> beside the repository
/// (found by walking up from the test assembly to the directory holding Security.sln); never copied in.
/// </summary>
public static class Wycheproof
{
    public static string Directory
    {
        get
        {
            var directory = new DirectoryInfo(AppContext.BaseDirectory);
            while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Security.sln")))
            {
                directory = directory.Parent;
            }

            if (directory is null)
            {
                throw new InvalidOperationException($"No Security.sln above {AppContext.BaseDirectory}.");
            }

            var vectors = Path.GetFullPath(Path.Combine(directory.FullName, "..", "shared", "testvectors", "wycheproof"));
            return System.IO.Directory.Exists(vectors)
                ? vectors
                : throw new InvalidOperationException($"Wycheproof vectors not found at {vectors}; ../shared must sit beside the repository.");
        }
    }

    public static IEnumerable<(JsonElement Group, JsonElement Test)> Cases(string file)
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Directory, file)));
        var root = document.RootElement.Clone();
        foreach (var group in root.GetProperty("testGroups").EnumerateArray())
        {
            foreach (var test in group.GetProperty("tests").EnumerateArray())
            {
                yield return (group, test);
            }
        }
    }

    public static int DeclaredCount(string file)
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Directory, file)));
        return document.RootElement.GetProperty("numberOfTests").GetInt32();
    }

    public static byte[] Hex(this JsonElement test, string name) => Convert.FromHexString(test.GetProperty(name).GetString()!);

    public static string Result(this JsonElement test) => test.GetProperty("result").GetString()!;

    public static int Id(this JsonElement test) => test.GetProperty("tcId").GetInt32();
}
