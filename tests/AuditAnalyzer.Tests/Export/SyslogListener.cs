using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;

namespace CrmSecurity.AuditAnalyzer.Tests.Export;

/// <summary>A real syslog collector on loopback: UDP (a message per datagram) or TCP (octet-counted frames, RFC 6587 §3.4.1).</summary>
internal sealed class SyslogListener : IAsyncDisposable
{
    private readonly Channel<string> _messages = Channel.CreateUnbounded<string>();
    private readonly CancellationTokenSource _stop = new();
    private readonly UdpClient? _udp;
    private readonly TcpListener? _tcp;
    private readonly Task _loop;

    private SyslogListener(string protocol, int port)
    {
        Protocol = protocol;
        if (protocol == "udp")
        {
            _udp = new UdpClient(new IPEndPoint(IPAddress.Loopback, port));
            Port = ((IPEndPoint)_udp.Client.LocalEndPoint!).Port;
            _loop = ReceiveUdpAsync();
        }
        else
        {
            _tcp = new TcpListener(IPAddress.Loopback, port);
            _tcp.Start();
            Port = ((IPEndPoint)_tcp.LocalEndpoint).Port;
            _loop = AcceptTcpAsync();
        }
    }

    public string Protocol { get; }

    public int Port { get; }

    /// <summary>Every TCP frame's declared length matched the bytes that followed it.</summary>
    public bool FramingHeld { get; private set; } = true;

    public static SyslogListener Start(string protocol, int port = 0) => new(protocol, port);

    /// <summary>A loopback TCP port that was free a moment ago (for a collector that starts late).</summary>
    public static int FreeTcpPort()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    public IDictionary<string, string?> Settings(string minSeverity = "low") => new Dictionary<string, string?>
    {
        ["AuditAnalyzer:Export:Syslog:Enabled"] = "true",
        ["AuditAnalyzer:Export:Syslog:Host"] = "127.0.0.1",
        ["AuditAnalyzer:Export:Syslog:Port"] = Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["AuditAnalyzer:Export:Syslog:Protocol"] = Protocol,
        ["AuditAnalyzer:Export:Syslog:MinSeverity"] = minSeverity,
    };

    /// <summary>Waits for a message containing <paramref name="text"/>; returns all messages read so far.</summary>
    public async Task<List<string>> WaitForAsync(string text, List<string> seen, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        while (!seen.Any(m => m.Contains(text, StringComparison.Ordinal)))
        {
            try
            {
                seen.Add(await _messages.Reader.ReadAsync(timeout.Token));
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                Assert.Fail($"no syslog message with '{text}' within 30 seconds; got {seen.Count}: {string.Join(" / ", seen)}");
            }
        }

        return seen;
    }

    public List<string> Drain()
    {
        var drained = new List<string>();
        while (_messages.Reader.TryRead(out var message))
        {
            drained.Add(message);
        }

        return drained;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _udp?.Dispose();
        _tcp?.Stop();
        try
        {
            await _loop;
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // Stopped.
        }

        _stop.Dispose();
    }

    private async Task ReceiveUdpAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var datagram = await _udp!.ReceiveAsync(_stop.Token);
            await _messages.Writer.WriteAsync(Encoding.UTF8.GetString(datagram.Buffer));
        }
    }

    private async Task AcceptTcpAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var client = await _tcp!.AcceptTcpClientAsync(_stop.Token);
            _ = ReadFramesAsync(client);
        }
    }

    private async Task ReadFramesAsync(TcpClient client)
    {
        using (client)
        {
            var stream = client.GetStream();
            var buffer = new List<byte>();
            var chunk = new byte[4096];
            try
            {
                while (true)
                {
                    var read = await stream.ReadAsync(chunk, _stop.Token);
                    if (read == 0)
                    {
                        return;
                    }

                    buffer.AddRange(chunk.AsSpan(0, read));
                    while (TryTakeFrame(buffer, out var frame))
                    {
                        await _messages.Writer.WriteAsync(frame);
                    }
                }
            }
            catch (Exception e) when (e is OperationCanceledException or IOException)
            {
                // Closed.
            }
        }
    }

    private bool TryTakeFrame(List<byte> buffer, out string frame)
    {
        frame = "";
        var space = buffer.IndexOf((byte)' ');
        if (space < 0)
        {
            return false;
        }

        if (!int.TryParse(Encoding.ASCII.GetString(buffer.GetRange(0, space).ToArray()), out var length) || length <= 0)
        {
            FramingHeld = false;
            buffer.Clear();
            return false;
        }

        if (buffer.Count < space + 1 + length)
        {
            return false;
        }

        var bytes = buffer.GetRange(space + 1, length).ToArray();
        buffer.RemoveRange(0, space + 1 + length);
        frame = Encoding.UTF8.GetString(bytes);
        if (!frame.StartsWith('<'))
        {
            FramingHeld = false;
        }

        return true;
    }
}
