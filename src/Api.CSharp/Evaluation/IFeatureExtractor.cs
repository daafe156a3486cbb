namespace DiffusionFunctional.Evaluation;

/// <summary>A pretrained network that maps images to feature vectors (one row per image).</summary>
public interface IFeatureExtractor : IDisposable
{
    /// <summary>Names the network, its weights and its preprocessing: features cached under one id are interchangeable.</summary>
    string Id { get; }

    /// <summary>Length of one feature vector.</summary>
    int Dimension { get; }

    /// <summary>Features of every image, [N, Dimension]; deterministic for given images.</summary>
    /// <param name="images">The images; grayscale ones are replicated to 3 channels.</param>
    /// <param name="progress">Receives the number of images done so far.</param>
    double[,] Extract(ImageBatch images, IProgress<int>? progress = null);
}
