namespace CrmSecurity.Tests.Support;

/// <summary>Removing a test host's temporary folder after the host has stopped.</summary>
internal static class TestDirectories
{
    /// <summary>
    /// Deletes the folder, trying again for up to five seconds: right after an in-process host stops, SQLite can still
    /// create or remove a journal file in it for a moment, and a recursive delete then fails with "Directory not empty".
    /// </summary>
    public static async Task DeleteAsync(string path)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                Directory.Delete(path, recursive: true);
                return;
            }
            catch (IOException) when (attempt < 20)
            {
                await Task.Delay(250);
            }
        }
    }
}
