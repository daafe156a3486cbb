namespace DiffusionFunctional.Core

open System
open System.Runtime.InteropServices

// The Core's entry points for C# callers: plain arrays and records, null for "none", and Try-methods that return
// false with a one-line error instead of F# Result, option or list types. The F#-facing modules (Schedule,
// Objectives, AffinityCsv, TaskAffinity) stay as they are for F# users; these only translate.

/// The task-affinity statistic of observation O1: every pair of groups (i < j) with its |delta log-SNR| and affinity,
/// and Spearman's rho between the two (NaN with fewer than two pairs).
type AffinityVersusGap =
    { Gaps: float[]
      Affinities: float[]
      SpearmanRho: float }

/// Noise schedules for C# callers.
[<AbstractClass; Sealed>]
type NoiseSchedules =
    /// The schedule names <see cref="TryCreate"/> accepts (diffusers' names).
    static member KnownNames: string[] = List.toArray Schedule.knownNames

    /// A named schedule (linear, scaled_linear, squaredcos_cap_v2, sigmoid) of T steps; false with the reason otherwise.
    static member TryCreate(name: string, timesteps: int, [<Out>] schedule: byref<NoiseSchedule>, [<Out>] error: byref<string>) : bool =
        match Schedule.tryCreate name timesteps with
        | Ok s -> schedule <- s; error <- null; true
        | Error e -> schedule <- Unchecked.defaultof<_>; error <- e; false

    /// A schedule from explicit betas (each in (0, 1)); false with the reason otherwise.
    static member TryCreateCustom(betas: float[], [<Out>] schedule: byref<NoiseSchedule>, [<Out>] error: byref<string>) : bool =
        match Schedule.tryCreateCustom betas with
        | Ok s -> schedule <- s; error <- null; true
        | Error e -> schedule <- Unchecked.defaultof<_>; error <- e; false

    /// The kind named by a schedule name, for callers that build schedules themselves; false for an unknown name.
    static member TryParseKind(name: string, [<Out>] kind: byref<ScheduleKind>) : bool =
        match Schedule.tryParseKind name with
        | Ok k -> kind <- k; true
        | Error _ -> kind <- Unchecked.defaultof<_>; false

/// Exact timestep clustering for C# callers (ANT (Go et al. 2023) section 4.1; docs/clustering.md).
[<AbstractClass; Sealed>]
type TimestepClusterings =
    /// Clusters T timesteps of the named schedule into k intervals, exactly. <paramref name="affinity"/> is the G x G
    /// matrix for the affinity objective (null otherwise). On failure, <paramref name="error"/> says why
    /// (<c>error.Message</c> words it).
    static member TryCluster(scheduleName: string, timesteps: int, clusters: int, objectiveName: string, snrScale: string,
                             affinity: float[,], [<Out>] result: byref<TimestepClusters>, [<Out>] error: byref<ClusteringError>) : bool =
        let given = if isNull affinity then None else Some affinity
        match Objectives.clusterByName scheduleName timesteps clusters objectiveName snrScale given with
        | Ok c -> result <- c; error <- Unchecked.defaultof<_>; true
        | Error e -> result <- Unchecked.defaultof<_>; error <- e; false

    /// Clusters a schedule's timesteps with an objective, exactly; false with the reason otherwise.
    static member TryCluster(schedule: NoiseSchedule, objective: Objective, clusters: int,
                             [<Out>] result: byref<TimestepClusters>, [<Out>] error: byref<ClusteringError>) : bool =
        match Objectives.cluster schedule objective clusters with
        | Ok c -> result <- c; error <- Unchecked.defaultof<_>; true
        | Error e -> result <- Unchecked.defaultof<_>; error <- e; false

    /// The objective a user names (timestep, snr, snr-raw, affinity; `snrScale` "raw" turns snr into snr-raw); false
    /// with the error for an unknown name or scale. The one objective parser of the library, generator and CLI.
    static member TryChooseObjective(name: string, snrScale: string, [<Out>] choice: byref<ObjectiveChoice>, [<Out>] error: byref<ClusteringError>) : bool =
        match Objectives.tryChoose name snrScale with
        | Ok c -> choice <- c; error <- Unchecked.defaultof<_>; true
        | Error e -> choice <- Unchecked.defaultof<_>; error <- e; false

    /// The exact k contiguous intervals of least total |v - median| over per-timestep values: what the timestep and
    /// snr objectives minimise, for values of the caller's own (a new objective: docs/extending.md).
    /// Example: `TimestepClusterings.ClusterValues([| 0.; 1.; 10.; 11. |], 2).Boundaries` is `[| 0; 2; 4 |]`.
    static member ClusterValues(values: float[], clusters: int) : Clustering =
        if isNull values || values.Length = 0 then invalidArg "values" "no values to cluster"
        if clusters < 1 || clusters > values.Length then
            invalidArg "clusters" (sprintf "clusters must lie in 1..%d, got %d" values.Length clusters)
        Clustering.solve (IntervalCost.l1ToMedian values) clusters

    /// The objective names users can write (timestep, snr, snr-raw, affinity).
    static member ObjectiveNames : string[] = Array.copy Objectives.names

    /// The SNR scale (log or raw) of a user's spelling; false for an unknown one.
    static member TryParseSnrScale(name: string, [<Out>] scale: byref<SnrScale>) : bool =
        match Objectives.tryParseSnrScale name with
        | Ok s -> scale <- s; true
        | Error _ -> scale <- Unchecked.defaultof<_>; false

    /// Whether an affinity matrix is usable (square, finite, symmetric); false with the reason otherwise.
    static member TryValidateAffinity(matrix: float[,], [<Out>] error: byref<ClusteringError>) : bool =
        match Objectives.validateAffinity matrix with
        | Ok () -> error <- Unchecked.defaultof<_>; true
        | Error e -> error <- e; false

/// Task-affinity matrices as CSV files and the O1 statistic, for C# callers.
[<AbstractClass; Sealed>]
type AffinityMatrices =
    /// Parses a G x G affinity CSV (square, finite, symmetric); false with a one-line reason otherwise.
    static member TryParse(text: string, [<Out>] matrix: byref<float[,]>, [<Out>] error: byref<string>) : bool =
        match AffinityCsv.parse text with
        | Ok m -> matrix <- m; error <- null; true
        | Error e -> matrix <- null; error <- e; false

    /// Parses a square CSV of finite numbers without the symmetry check; false with a one-line reason otherwise.
    static member TryParseSquare(text: string, [<Out>] matrix: byref<float[,]>, [<Out>] error: byref<string>) : bool =
        match AffinityCsv.parseSquare text with
        | Ok m -> matrix <- m; error <- null; true
        | Error e -> matrix <- null; error <- e; false

    /// The CSV text <see cref="TryParse"/> reads back exactly.
    static member Format(matrix: float[,]) : string = AffinityCsv.format matrix

    /// Affinity against |delta log-SNR| over the group pairs, with Spearman's rho (observation O1 predicts rho < 0).
    static member VersusLogSnrGap(affinity: float[,], schedule: NoiseSchedule) : AffinityVersusGap =
        let groupLogSnr = TaskAffinity.groupLogSnr schedule (Array2D.length1 affinity)
        let pairs, rho = TaskAffinity.versusLogSnrGap affinity groupLogSnr
        { Gaps = Array.map fst pairs; Affinities = Array.map snd pairs; SpearmanRho = rho }

/// Timestep densities (uniform, logit-normal, beta, SpeeD) for C# callers.
[<AbstractClass; Sealed>]
type TimestepDensities =
    /// Parses <c>uniform</c>, <c>logit-normal[:m,s]</c>, <c>beta[:a,b]</c> or <c>speed[:k,threshold]</c>; false with a
    /// one-line reason otherwise.
    static member TryParse(spec: string, [<Out>] density: byref<TimestepDensity>, [<Out>] error: byref<string>) : bool =
        match TimestepDensity.tryParse spec with
        | Ok d -> density <- d; error <- null; true
        | Error e -> density <- Unchecked.defaultof<_>; error <- e; false
