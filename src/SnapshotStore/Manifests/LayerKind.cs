namespace Snapshots.Store.Manifests;

/// <summary>Where a layer sits in a chain. OS and runtime layers are encrypted in the shared trust domain,
/// function layers in their tenant's.</summary>
public enum LayerKind : byte
{
    Os = 0,
    Runtime = 1,
    Function = 2,
}

public static class LayerKinds
{
    public static string ToText(this LayerKind kind) => kind switch
    {
        LayerKind.Os => "os",
        LayerKind.Runtime => "runtime",
        LayerKind.Function => "function",
        _ => kind.ToString(),
    };

    public static bool TryParse(string text, out LayerKind kind)
    {
        switch (text)
        {
            case "os": kind = LayerKind.Os; return true;
            case "runtime": kind = LayerKind.Runtime; return true;
            case "function": kind = LayerKind.Function; return true;
            default: kind = default; return false;
        }
    }
}
