using static TorchSharp.torch;

namespace DiffusionFunctional.Weighting;

/// <summary>
/// A weighting whose trainable parameters (<see cref="IWeighting.ExtraParameterGroups"/>) should live on the model's
/// device, so that a step combines them with the losses without copying them across (issue 13). The trainer calls
/// <see cref="MoveTo"/> once, before it builds the optimiser; afterwards <see cref="IWeighting.ExtraParameterGroups"/>
/// lists the moved parameters.
/// </summary>
public interface IDeviceResidentWeighting
{
    /// <summary>Moves the method's parameters (values kept) to <paramref name="device"/>; nothing when already there.</summary>
    void MoveTo(Device device);
}
