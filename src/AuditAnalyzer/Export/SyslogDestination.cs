using System.Net;
using System.Net.Sockets;
using CrmSecurity.AuditAnalyzer.Policy;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Export;

/// <summary>
/// Sends finding changes as RFC 5424 syslog messages carrying CEF, over UDP (one message per datagram, RFC 5426)
/// or TCP (octet counting, RFC 6587 §3.4.1). Syslog has no acknowledgement: TCP confirms the bytes reached the
/// collector's socket, UDP not even that. A failed send is retried with backoff until it goes through, so a
/// collector that is down holds the cursor rather than losing findings.
/// </summary>
internal sealed partial class SyslogDestination(IOptions<ExportOptions> options, TimeProvider time, ILogger<SyslogDestination> logger)
    : IFindingDestination, IAsyncDisposable
{
    private readonly ExportOptions _options = options.Value;
    private readonly SyslogOptions _syslog = options.Value.Syslog;
    private readonly string _hostName = Environment.MachineName;
    private readonly int _processId = Environment.ProcessId;
    private Socket? _udp;
    private TcpClient? _tcp;

    public string Name => "syslog";

    public Severity MinSeverity => SeverityNames.Parse(_syslog.MinSeverity);

    public bool RealIdentities => _syslog.RealIdentities;

    public async Task<DeliveryResult> DeliverAsync(ExportFinding finding, CancellationToken cancellationToken)
    {
        var message = SyslogMessage.Format(finding, _syslog, time.GetUtcNow(), _hostName, _processId);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                if (_syslog.Protocol == "tcp")
                {
                    await SendTcpAsync(SyslogMessage.OctetCounted(message), cancellationToken);
                }
                else
                {
                    await SendUdpAsync(SyslogMessage.Datagram(message), cancellationToken);
                }

                return DeliveryResult.Ok;
            }
            catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException && !cancellationToken.IsCancellationRequested)
            {
                Reset();
                var delay = Backoff.Delay(attempt, _options.RetryDelay, _options.MaxRetryDelay);
                LogSendFailed(logger, _syslog.Host ?? "", _syslog.Port, _syslog.Protocol, delay, e.Message);
                await Task.Delay(delay, time, cancellationToken);
            }
        }
    }

    public ValueTask DisposeAsync()
    {
        Reset();
        return ValueTask.CompletedTask;
    }

    private async Task SendUdpAsync(byte[] datagram, CancellationToken cancellationToken)
    {
        if (_udp is null)
        {
            var address = await ResolveAsync(cancellationToken);
            var socket = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            await socket.ConnectAsync(new IPEndPoint(address, _syslog.Port), cancellationToken);
            _udp = socket;
        }

        await _udp.SendAsync(datagram, SocketFlags.None, cancellationToken);
    }

    private async Task SendTcpAsync(byte[] frame, CancellationToken cancellationToken)
    {
        if (_tcp is null)
        {
            var client = new TcpClient();
            try
            {
                await client.ConnectAsync(_syslog.Host!, _syslog.Port, cancellationToken);
            }
            catch
            {
                client.Dispose();
                throw;
            }

            _tcp = client;
        }

        var stream = _tcp.GetStream();
        await stream.WriteAsync(frame, cancellationToken);
        await stream.FlushAsync(cancellationToken);
    }

    private async Task<IPAddress> ResolveAsync(CancellationToken cancellationToken)
    {
        if (IPAddress.TryParse(_syslog.Host, out var literal))
        {
            return literal;
        }

        var addresses = await Dns.GetHostAddressesAsync(_syslog.Host!, cancellationToken);
        return addresses.FirstOrDefault() ?? throw new SocketException((int)SocketError.HostNotFound);
    }

    private void Reset()
    {
        _udp?.Dispose();
        _udp = null;
        _tcp?.Dispose();
        _tcp = null;
    }

    [LoggerMessage(EventId = 6210, Level = LogLevel.Warning, Message = "Sending a finding to syslog {Host}:{Port} ({Protocol}) failed ({Error}); retrying in {Delay}")]
    private static partial void LogSendFailed(ILogger logger, string host, int port, string protocol, TimeSpan delay, string error);
}
