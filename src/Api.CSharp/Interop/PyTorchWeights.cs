using DiffusionFunctional.Models;

namespace DiffusionFunctional.Interop;

/// <summary>
/// Moves a denoiser's weights to and from PyTorch files in one call each: <see cref="Export"/> writes a <c>torch.save</c>
/// state_dict keyed like diffusers' <c>UNet2DModel</c> (<c>torch.load("unet.pt")</c> then
/// <c>UNet2DModel(**config).load_state_dict</c>); <see cref="Import"/> reads safetensors or any <c>torch.save</c>
/// state_dict with diffusers' keys or dfn's own, checking every key and shape. For whole folders and checkpoints see
/// <see cref="WeightsExport"/> and <see cref="WeightsImport"/>.
/// </summary>
public static class PyTorchWeights
{
    /// <summary>Writes the model's state_dict as a PyTorch file with diffusers' UNet2DModel keys.</summary>
    public static void Export(Denoiser model, string path) => WeightsExport.WritePyTorch(model, path);

    /// <summary>Loads a weights file into <paramref name="model"/>; a missing, unexpected or mis-shaped key is bad input naming it.</summary>
    public static void Import(Denoiser model, string path)
    {
        using var weights = WeightsSource.Locate(path).ReadWeights();
        WeightsImport.LoadInto(model, weights, path);
    }
}
