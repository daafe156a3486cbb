namespace DiffusionFunctional.Core

open System

/// Which SNR values the `snr` objective clusters: ln SNR (default) or SNR itself.
type SnrScale =
    | LogScale
    | RawScale

/// The clustering objectives of ANT (Go et al. 2023) section 4.1; docs/clustering.md.
type Objective =
    /// Sum of |t - median| per interval: equal-width intervals.
    | TimestepObjective
    /// Sum of |v_t - median| with v_t = ln SNR(t) (LogScale) or SNR(t) (RawScale).
    | SnrObjective of SnrScale
    /// A symmetric G x G task-affinity matrix over G equal groups of timesteps.
    | AffinityObjective of float[,]

/// Why a clustering request cannot be carried out. `ClusteringError.message` words each case.
type ClusteringError =
    | InvalidTimesteps of timesteps: int
    | InvalidClusterCount of clusters: int * limit: int * unitName: string
    | UnknownSchedule of name: string
    | UnknownObjective of name: string
    | UnknownSnrScale of name: string
    | AffinityNotSquare of rows: int * columns: int
    | AffinityNonFinite of row: int * column: int
    | AffinityAsymmetric of row: int * column: int * value: float * mirrored: float
    | GroupsDoNotDivide of groups: int * timesteps: int
    | AffinityMissing
    | InvalidBetas of reason: string

/// A clustering objective as a user names it, before any affinity matrix is attached: the one parse of objective names
/// that the library, the source generator and the command line share (Objectives.tryChoose).
type ObjectiveChoice =
    { /// The canonical name: "timestep", "snr" (log-SNR), "snr-raw" (SNR itself) or "affinity".
      Name: string
      /// The values the `snr` objectives cluster (LogScale for every other objective).
      Scale: SnrScale
      /// Whether the objective needs a task-affinity matrix.
      NeedsAffinity: bool
      /// Whether it clusters SNR values.
      UsesSnr: bool }

/// The result of clustering a schedule's timesteps: boundaries in timesteps, 0-based and half-open.
type TimestepClusters =
    { ScheduleName: string
      ObjectiveName: string
      Timesteps: int
      Boundaries: int[]
      Cost: float }
    member this.Count = this.Boundaries.Length - 1

module ClusteringError =
    /// A one-line description naming the problem and the offending value.
    let message error =
        match error with
        | InvalidTimesteps t -> sprintf "timesteps must be at least 1, got %d" t
        | InvalidClusterCount(k, limit, unitName) when k < 1 -> sprintf "clusters must be at least 1, got %d" k
        | InvalidClusterCount(k, limit, unitName) -> sprintf "clusters (%d) cannot exceed the number of %s (%d)" k unitName limit
        | UnknownSchedule name -> sprintf "unknown schedule '%s' (expected one of: %s)" name (String.Join(", ", Schedule.knownNames))
        | UnknownObjective name -> sprintf "unknown objective '%s' (expected one of: timestep, snr, snr-raw, affinity)" name
        | UnknownSnrScale name -> sprintf "unknown SNR scale '%s' (expected log or raw)" name
        | AffinityNotSquare(rows, cols) -> sprintf "the affinity matrix must be square, got %d rows and %d columns" rows cols
        | AffinityNonFinite(r, c) -> sprintf "affinity cell (row %d, column %d) is not a finite number" (r + 1) (c + 1)
        | AffinityAsymmetric(r, c, v, m) ->
            sprintf "the affinity matrix must be symmetric: cell (%d, %d) = %g but (%d, %d) = %g" (r + 1) (c + 1) v (c + 1) (r + 1) m
        | GroupsDoNotDivide(g, t) -> sprintf "the affinity matrix has %d groups, which does not divide %d timesteps" g t
        | AffinityMissing -> "the affinity objective needs an affinity matrix"
        | InvalidBetas reason -> reason

/// The one-line wording of an error, as a property for C# callers.
type ClusteringError with
    /// A one-line description naming the problem and the offending value (<c>ClusteringError.message</c>).
    member this.Message = ClusteringError.message this

/// The objectives as interval costs, and the end-to-end clustering of a schedule's timesteps.
module Objectives =

    /// Every objective name users can write, canonical spellings, in the order help texts list them.
    let names = [| "timestep"; "snr"; "snr-raw"; "affinity" |]

    /// Parses an SNR scale name: "log" (default) or "raw".
    let tryParseSnrScale (name: string) =
        match (if isNull name then "" else name.Trim().ToLowerInvariant()) with
        | "" | "log" -> Ok LogScale
        | "raw" -> Ok RawScale
        | _ -> Error(UnknownSnrScale name)

    /// Parses an objective name (any case; "timesteps" is read as "timestep"), with an SNR scale ("log", "raw" or
    /// empty) that only `snr` reads: `snr` with scale raw is `snr-raw`. The affinity matrix is attached separately.
    /// Example: `tryChoose "snr" "raw"` is `Ok { Name = "snr-raw"; Scale = RawScale; ... }`.
    let tryChoose (name: string) (snrScale: string) : Result<ObjectiveChoice, ClusteringError> =
        let choice n scale affinity snr = Ok { Name = n; Scale = scale; NeedsAffinity = affinity; UsesSnr = snr }
        match (if isNull name then "" else name.Trim().ToLowerInvariant()) with
        | "timestep" | "timesteps" -> choice "timestep" LogScale false false
        | "snr-raw" -> choice "snr-raw" RawScale false true
        | "snr" ->
            tryParseSnrScale snrScale
            |> Result.bind (fun s -> choice (if s = RawScale then "snr-raw" else "snr") s false true)
        | "affinity" -> choice "affinity" LogScale true false
        | _ -> Error(UnknownObjective name)

    /// The objective a choice names, with the affinity matrix when it needs one.
    let ofChoice (choice: ObjectiveChoice) (affinity: float[,] option) : Result<Objective, ClusteringError> =
        if choice.NeedsAffinity then
            match affinity with
            | Some m -> Ok(AffinityObjective m)
            | None -> Error AffinityMissing
        elif choice.UsesSnr then Ok(SnrObjective choice.Scale)
        else Ok TimestepObjective

    /// The name users see for an objective ("timestep", "snr", "affinity").
    let name objective =
        match objective with
        | TimestepObjective -> "timestep"
        | SnrObjective _ -> "snr"
        | AffinityObjective _ -> "affinity"

    /// Checks an affinity matrix: square, finite, symmetric (to 1e-9 relative).
    let validateAffinity (matrix: float[,]) : Result<unit, ClusteringError> =
        let rows, cols = Array2D.length1 matrix, Array2D.length2 matrix
        if rows <> cols || rows = 0 then Error(AffinityNotSquare(rows, cols))
        else
            // Plain loops: G can be in the thousands and this runs before every affinity clustering.
            let mutable failure = None
            let mutable r = 0
            while failure.IsNone && r < rows do
                let mutable c = 0
                while failure.IsNone && c < cols do
                    let v = matrix.[r, c]
                    if Double.IsNaN v || Double.IsInfinity v then failure <- Some(AffinityNonFinite(r, c))
                    c <- c + 1
                r <- r + 1
            r <- 0
            while failure.IsNone && r < rows do
                let mutable c = r + 1
                while failure.IsNone && c < cols do
                    let a, b = matrix.[r, c], matrix.[c, r]
                    if abs (a - b) > 1e-9 * max 1.0 (max (abs a) (abs b)) then failure <- Some(AffinityAsymmetric(r, c, a, b))
                    c <- c + 1
                r <- r + 1
            match failure with
            | Some e -> Error e
            | None -> Ok()

    /// The interval cost of an objective over the schedule's timesteps (affinity: over its groups).
    let intervalCost (schedule: NoiseSchedule) (objective: Objective) : Result<IntervalCost, ClusteringError> =
        match objective with
        | TimestepObjective -> Ok(IntervalCost.l1ToMedian (Array.init schedule.Timesteps float))
        | SnrObjective LogScale -> Ok(IntervalCost.l1ToMedian schedule.LogSnr)
        | SnrObjective RawScale -> Ok(IntervalCost.l1ToMedian schedule.Snr)
        | AffinityObjective matrix ->
            validateAffinity matrix
            |> Result.bind (fun () ->
                let g = Array2D.length1 matrix
                if schedule.Timesteps % g <> 0 then Error(GroupsDoNotDivide(g, schedule.Timesteps))
                else Ok(IntervalCost.affinity matrix))

    /// Clusters the schedule's timesteps into k intervals, exactly. Affinity boundaries are found in
    /// group units and reported in timesteps (group g = [g T/G, (g+1) T/G)).
    /// Example: `Objectives.cluster (Schedule.create Linear 1000) TimestepObjective 5` gives boundaries
    /// [|0; 200; 400; 600; 800; 1000|].
    let cluster (schedule: NoiseSchedule) (objective: Objective) (k: int) : Result<TimestepClusters, ClusteringError> =
        intervalCost schedule objective
        |> Result.bind (fun cost ->
            let unitName = match objective with AffinityObjective _ -> "affinity groups" | _ -> "timesteps"
            if k < 1 || k > cost.Length then Error(InvalidClusterCount(k, cost.Length, unitName))
            else
                let result = Clustering.solve cost k
                let scale = schedule.Timesteps / cost.Length
                Ok { ScheduleName = Schedule.name schedule.Kind
                     ObjectiveName = name objective
                     Timesteps = schedule.Timesteps
                     Boundaries = result.Boundaries |> Array.map (fun b -> b * scale)
                     Cost = result.Cost })

    /// Everything from names: schedule, T, k, objective, SNR scale and an optional affinity matrix.
    let clusterByName (scheduleName: string) (timesteps: int) (k: int) (objectiveName: string) (snrScale: string) (affinity: float[,] option) =
        if timesteps < 1 then Error(InvalidTimesteps timesteps)
        else
            match Schedule.tryParseKind scheduleName with
            | Error _ -> Error(UnknownSchedule scheduleName)
            | Ok kind ->
                tryChoose objectiveName snrScale
                |> Result.bind (fun choice -> ofChoice choice affinity)
                |> Result.bind (fun o -> cluster (Schedule.create kind timesteps) o k)
