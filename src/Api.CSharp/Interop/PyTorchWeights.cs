using DiffusionFunctional.Models;
using TorchSharp;
using TorchSharp.PyBridge;

namespace DiffusionFunctional.Interop;

/// <summary>
/// Moves UNet weights to and from PyTorch's own file format (a <c>torch.save(model.state_dict())</c> zip) through
/// TorchSharp.PyBridge, so <c>torch.load("model.pt")</c> gives a state_dict keyed like diffusers' UNet2DModel
/// (<c>conv_in.weight</c>, <c>down_blocks.0.resnets.0.conv1.weight</c>, ...).
/// </summary>
public static class PyTorchWeights
{
    /// <summary>Writes the model's state_dict as a PyTorch file.</summary>
    public static void Export(UNet model, string path)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null) Directory.CreateDirectory(directory);
        model.save_py(path);
    }

    /// <summary>
    /// Loads a PyTorch state_dict file into <paramref name="model"/>. The file must hold exactly the model's keys with
    /// the model's shapes (PyBridge's own <c>load_py</c> does not check shapes, so the check is done here first).
    /// </summary>
    public static void Import(UNet model, string path)
    {
        if (!File.Exists(path)) throw new BadInputException($"weights file not found: {path}");
        System.Collections.Hashtable loaded;
        try { loaded = PyTorchUnpickler.UnpickleStateDict(path); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new BadInputException($"{path} is not a PyTorch state_dict file: {e.Message}");
        }
        var tensors = loaded.Cast<System.Collections.DictionaryEntry>().ToDictionary(e => (string)e.Key, e => (torch.Tensor)e.Value!);
        try
        {
            var target = model.state_dict();
            var missing = target.Keys.Where(k => !tensors.ContainsKey(k)).ToList();
            var unexpected = tensors.Keys.Where(k => !target.ContainsKey(k)).ToList();
            if (missing.Count > 0) throw new BadInputException($"{path} lacks {missing.Count} key(s) of the model, e.g. {missing[0]}");
            if (unexpected.Count > 0) throw new BadInputException($"{path} has {unexpected.Count} key(s) the model lacks, e.g. {unexpected[0]}");
            foreach (var (key, tensor) in tensors)
                if (!target[key].shape.SequenceEqual(tensor.shape))
                    throw new BadInputException($"{path}: {key} has shape [{string.Join(", ", tensor.shape)}], the model needs [{string.Join(", ", target[key].shape)}]");
            using var noGrad = torch.no_grad();
            foreach (var (key, tensor) in tensors) target[key].copy_(tensor);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }
}
