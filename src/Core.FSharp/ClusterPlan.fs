namespace DiffusionFunctional.Core

open System

/// The runtime plan a trainer follows: T timesteps cut into k contiguous half-open clusters
/// [Boundaries.[i], Boundaries.[i+1]). Built from Core's clustering, from a generated facade, or by hand.
[<Sealed; AllowNullLiteral>]
type ClusterPlan private (timesteps: int, boundaries: int[], origin: string) =
    let lookup =
        // One entry per timestep keeps ClusterOf O(1); T is at most a few hundred thousand.
        let table = Array.zeroCreate timesteps
        for c in 0 .. boundaries.Length - 2 do
            for t in boundaries.[c] .. boundaries.[c + 1] - 1 do
                table.[t] <- c
        table

    /// Number of timesteps T.
    member _.Timesteps = timesteps
    /// Number of clusters k.
    member _.Count = boundaries.Length - 1
    /// A copy of the k + 1 boundaries, 0 = b_0 < ... < b_k = T.
    member _.Boundaries = Array.copy boundaries
    /// Where the plan came from (e.g. "snr/log k=5 (Core)"), for logs and checkpoints.
    member _.Origin = origin
    /// Start (inclusive) of cluster c.
    member _.Start(c: int) = boundaries.[c]
    /// End (exclusive) of cluster c.
    member _.End(c: int) = boundaries.[c + 1]
    /// Number of timesteps in cluster c.
    member _.Size(c: int) = boundaries.[c + 1] - boundaries.[c]

    /// The cluster that holds timestep t. Throws ArgumentOutOfRangeException outside [0, T).
    member _.ClusterOf(t: int) =
        if t < 0 || t >= timesteps then
            raise (ArgumentOutOfRangeException("t", t, sprintf "timestep must lie in [0, %d)" timesteps))
        lookup.[t]

    /// How many of `batchSize` samples cluster c draws: equal chunks, the remainder spread one by one
    /// over the first clusters (ANT section 4.2; docs/weightings.md).
    member this.ChunkSize(c: int, batchSize: int) =
        batchSize / this.Count + (if c < batchSize % this.Count then 1 else 0)

    /// Same timesteps and boundaries (origin is descriptive only).
    member _.SameAs(other: ClusterPlan) =
        not (isNull other) && other.Timesteps = timesteps && other.Boundaries = boundaries

    /// The plan in words for logs and start lines: "one cluster (uniform timesteps over T = 1000)" or
    /// "5 clusters of T = 1000 (linear/snr k=5): [0, 153) [153, 394) ...".
    override this.ToString() =
        if this.Count = 1 then sprintf "one cluster (uniform timesteps over T = %d)" timesteps
        else
            let ranges = String.Join(" ", Array.init this.Count (fun c -> sprintf "[%d, %d)" boundaries.[c] boundaries.[c + 1]))
            let from = if String.IsNullOrEmpty origin then "" else sprintf " (%s)" origin
            sprintf "%d clusters of T = %d%s: %s" this.Count timesteps from ranges

    /// Validates and builds a plan: T >= 1, boundaries strictly increasing from 0 to T.
    static member Create(timesteps: int, boundaries: int[], origin: string) =
        if timesteps < 1 then invalidArg "timesteps" (sprintf "timesteps must be at least 1, got %d" timesteps)
        if isNull boundaries || boundaries.Length < 2 then invalidArg "boundaries" "a plan needs at least two boundaries (one cluster)"
        if boundaries.[0] <> 0 || boundaries.[boundaries.Length - 1] <> timesteps then
            invalidArg "boundaries" (sprintf "boundaries must run from 0 to %d, got %d .. %d" timesteps boundaries.[0] boundaries.[boundaries.Length - 1])
        for i in 0 .. boundaries.Length - 2 do
            if boundaries.[i] >= boundaries.[i + 1] then
                invalidArg "boundaries" (sprintf "boundaries must strictly increase, but b_%d = %d and b_%d = %d" i boundaries.[i] (i + 1) boundaries.[i + 1])
        ClusterPlan(timesteps, Array.copy boundaries, (if isNull origin then "" else origin))

    /// A single cluster covering every timestep (vanilla training).
    static member Single(timesteps: int) = ClusterPlan.Create(timesteps, [| 0; timesteps |], "single")

    /// The plan of a Core clustering result.
    static member OfClusters(clusters: TimestepClusters) =
        ClusterPlan.Create(clusters.Timesteps, clusters.Boundaries,
                           sprintf "%s/%s k=%d" clusters.ScheduleName clusters.ObjectiveName clusters.Count)
