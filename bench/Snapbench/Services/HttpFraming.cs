using System.Globalization;
using System.Text;

namespace Snapshots.Snapbench.Services;

/// <summary>Just enough HTTP/1.1 framing for <see cref="FaultProxy"/>: a message head, then a body by
/// Content-Length, chunked transfer coding, or to the end of the connection. Buffers what it read ahead.</summary>
internal sealed class HttpFraming(Stream stream)
{
    private const int MaxHead = 64 * 1024;
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _start, _end;

    public Stream Stream { get; } = stream;

    /// <summary>The next message head, up to and including its blank line; null at a clean end of stream.</summary>
    public async Task<byte[]?> ReadHeadAsync(CancellationToken ct)
    {
        while (true)
        {
            int at = IndexOfBlankLine();
            if (at >= 0)
            {
                var head = _buffer.AsSpan(_start, at + 4 - _start).ToArray();
                _start = at + 4;
                return head;
            }
            if (_end - _start >= MaxHead) throw new IOException("HTTP head over 64 KiB");
            if (!await FillAsync(ct)) return _end == _start ? null : throw new IOException("truncated HTTP head");
        }
    }

    /// <summary>Copies exactly COUNT body bytes to TO.</summary>
    public async Task CopyAsync(long count, Stream to, CancellationToken ct)
    {
        while (count > 0)
        {
            if (_end == _start && !await FillAsync(ct)) throw new IOException("truncated HTTP body");
            int n = (int)Math.Min(count, _end - _start);
            await to.WriteAsync(_buffer.AsMemory(_start, n), ct);
            _start += n;
            count -= n;
        }
    }

    /// <summary>Copies a chunked body, its trailer included, to TO.</summary>
    public async Task CopyChunkedAsync(Stream to, CancellationToken ct)
    {
        while (true)
        {
            string line = await ReadLineAsync(to, ct);
            long size = long.Parse(line.Split(';')[0].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            if (size == 0)
            {
                while ((await ReadLineAsync(to, ct)).Length > 0)
                {
                    // Trailer fields, copied as they are.
                }
                return;
            }
            await CopyAsync(size + 2, to, ct); // the data and its CRLF
        }
    }

    /// <summary>Copies everything until the peer closes.</summary>
    public async Task CopyToEndAsync(Stream to, CancellationToken ct)
    {
        do
        {
            await to.WriteAsync(_buffer.AsMemory(_start, _end - _start), ct);
            _start = _end;
        }
        while (await FillAsync(ct));
    }

    /// <summary>A header's value in HEAD (case-insensitive name), or null.</summary>
    public static string? Header(string head, string name)
    {
        foreach (var line in head.Split("\r\n"))
        {
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0 && line.AsSpan(0, colon).Trim().Equals(name, StringComparison.OrdinalIgnoreCase))
                return line[(colon + 1)..].Trim();
        }
        return null;
    }

    private async Task<string> ReadLineAsync(Stream copyTo, CancellationToken ct)
    {
        while (true)
        {
            int at = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n"u8);
            if (at >= 0)
            {
                string line = Encoding.ASCII.GetString(_buffer, _start, at);
                await copyTo.WriteAsync(_buffer.AsMemory(_start, at + 2), ct);
                _start += at + 2;
                return line;
            }
            if (!await FillAsync(ct)) throw new IOException("truncated chunked body");
        }
    }

    private int IndexOfBlankLine()
    {
        int at = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n\r\n"u8);
        return at < 0 ? -1 : _start + at;
    }

    private async Task<bool> FillAsync(CancellationToken ct)
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
        if (_end == _buffer.Length) return true; // full: the caller consumes before asking again
        int n = await Stream.ReadAsync(_buffer.AsMemory(_end), ct);
        _end += n;
        return n > 0;
    }
}
