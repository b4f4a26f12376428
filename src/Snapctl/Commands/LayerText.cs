using System.Globalization;
using Snapshots.Host;

namespace Snapshots.Snapctl.Commands;

/// <summary>How `inspect` and `ls` print a layer for people.</summary>
public static class LayerText
{
    public static string Line(LayerInfo l)
    {
        ArgumentNullException.ThrowIfNull(l);
        return string.Create(CultureInfo.InvariantCulture,
            $"{l.Name}: {l.Layer} layer, domain {l.Domain}, {Output.Bytes(l.ImageBytes)} image, {l.Chunks} chunks, " +
            $"{l.DataEntries} data + {l.ZeroEntries} zero entries, manifest {Output.Bytes(l.ManifestBytes)} " +
            $"({l.ManifestRatio:P4}), parent {l.Parent ?? "-"}, created {l.Created:u}, publication {l.Sequence}, " +
            $"hash {l.ManifestHash}, key {l.KeyFingerprint ?? (l.KeyProblem is { } p ? "refused: " + p
                : "(not in this keyring)")}");
    }

    public static string Row(LayerInfo l)
    {
        ArgumentNullException.ThrowIfNull(l);
        return $"{l.Name,-24} {l.Layer,-8} {l.Domain,-20} {Output.Bytes(l.ImageBytes),10}  parent {l.Parent ?? "-"}";
    }
}
