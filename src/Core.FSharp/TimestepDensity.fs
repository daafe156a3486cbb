namespace DiffusionFunctional.Core

open System
open System.Globalization
open MathNet.Numerics

/// A distribution of training timesteps over 0..T-1 (t = 0 least noisy); docs/routing-and-densities.md.
type TimestepDensity =
    /// p_t = 1/T.
    | Uniform
    /// SD3's logit-normal (Esser et al. 2024, section 3.1): logit(u) ~ N(mean, scale^2) for u in (0, 1), u = 1 the
    /// noisiest; timestep t gets the probability of its bin [t/T, (t+1)/T).
    | LogitNormal of mean: float * scale: float
    /// u ~ Beta(a, b) on (0, 1), discretised into the same bins as LogitNormal.
    | Beta of a: float * b: float
    /// SpeeD's asymmetric sampling (Wang et al. 2024, "A Closer Look at Time Steps is Worthy of Triple Speed-Up for
    /// Diffusion Model Training", asymmetric sampling): p_t is proportional to k where the process increment is large
    /// (T * d sqrt(1 - abar_t)/dt > threshold, the acceleration area) and to 1 elsewhere (the convergence area).
    | Speed of suppression: float * threshold: float

/// Densities over the T discrete timesteps, their restriction to a cluster, and importance weights.
/// Hand-written over MathNet's special functions: no served library discretises these densities on a timestep grid.
module TimestepDensity =

    /// SD3's default logit-normal location and scale (m = 0, s = 1).
    let defaultLogitNormal = LogitNormal(0.0, 1.0)
    /// A symmetric Beta(2, 2): a mild bump on mid-noise timesteps (this library's choice; Beta has no reference default).
    let defaultBeta = Beta(2.0, 2.0)
    /// SpeeD's released code: ratio 5 (tanh(.) + 1.5 is 2.5 or 0.5) and threshold 1e-4 per step at T = 1000,
    /// here per unit of t/T (1e-4 * 1000 = 0.1) so the area does not move when T changes.
    let defaultSpeed = Speed(5.0, 0.1)

    let private usage = "uniform, logit-normal[:m,s], beta[:a,b] or speed[:k,threshold]"

    let private number (text: string) =
        match Double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture) with
        | true, v when not (Double.IsNaN v || Double.IsInfinity v) -> Some v
        | _ -> None

    let private validate density : Result<TimestepDensity, string> =
        match density with
        | LogitNormal(_, s) when not (s > 0.0) -> Error(sprintf "logit-normal scale s must be positive, got %g" s)
        | Beta(a, b) when not (a > 0.0 && b > 0.0) -> Error(sprintf "beta parameters a,b must be positive, got %g,%g" a b)
        | Speed(k, _) when not (k > 0.0) -> Error(sprintf "speed suppression k must be positive, got %g" k)
        | Speed(_, threshold) when not (threshold > 0.0) -> Error(sprintf "speed threshold must be positive, got %g" threshold)
        | _ -> Ok density

    let private twoNumbers (name: string) (args: string) (build: float * float -> TimestepDensity) =
        match args.Split(',') |> Array.map number with
        | [| Some x; Some y |] -> validate (build (x, y))
        | _ -> Error(sprintf "%s takes two numbers '%s:x,y', got '%s'" name name args)

    /// Parses `uniform`, `logit-normal[:m,s]`, `beta[:a,b]` or `speed[:k,threshold]` (case-insensitive); the
    /// defaults are SD3's (0, 1), (2, 2) and SpeeD's (5, 0.1). Errors are one line naming the problem.
    let tryParse (text: string) : Result<TimestepDensity, string> =
        let spec = if isNull text then "" else text.Trim().ToLowerInvariant()
        let name, args =
            match spec.IndexOf ':' with
            | -1 -> spec, None
            | i -> spec.Substring(0, i), Some(spec.Substring(i + 1))
        match name.Replace('_', '-'), args with
        | "uniform", None -> Ok Uniform
        | "uniform", Some _ -> Error "uniform takes no parameters"
        | "logit-normal", None -> Ok defaultLogitNormal
        | "logit-normal", Some a -> twoNumbers "logit-normal" a LogitNormal
        | "beta", None -> Ok defaultBeta
        | "beta", Some a -> twoNumbers "beta" a Beta
        | "speed", None -> Ok defaultSpeed
        | "speed", Some a -> twoNumbers "speed" a Speed
        | _ -> Error(sprintf "unknown timestep density '%s' (expected %s)" text usage)

    /// The canonical spec string, which `tryParse` reads back to the same density.
    let format (density: TimestepDensity) : string =
        let r (v: float) = v.ToString("R", CultureInfo.InvariantCulture)
        match density with
        | Uniform -> "uniform"
        | LogitNormal(m, s) -> sprintf "logit-normal:%s,%s" (r m) (r s)
        | Beta(a, b) -> sprintf "beta:%s,%s" (r a) (r b)
        | Speed(k, threshold) -> sprintf "speed:%s,%s" (r k) (r threshold)

    // Mass of [lo, hi] under a CDF/upper-tail pair, from whichever side avoids cancellation.
    let private binMass (cdf: float -> float) (upper: float -> float) (lo: float) (hi: float) =
        if lo >= 0.5 then max 0.0 (upper lo - upper hi) else max 0.0 (cdf hi - cdf lo)

    let private standardNormalCdf (z: float) =
        if Double.IsNegativeInfinity z then 0.0
        elif Double.IsPositiveInfinity z then 1.0
        else 0.5 * SpecialFunctions.Erfc(-z / Math.Sqrt 2.0)

    let private logitNormalMasses (m: float) (s: float) (timesteps: int) =
        let z (u: float) = if u <= 0.0 then Double.NegativeInfinity elif u >= 1.0 then Double.PositiveInfinity else (Math.Log(u / (1.0 - u)) - m) / s
        let cdf u = standardNormalCdf (z u)
        let upper u = standardNormalCdf (-(z u))
        Array.init timesteps (fun t -> binMass cdf upper (float t / float timesteps) (float (t + 1) / float timesteps))

    let private betaMasses (a: float) (b: float) (timesteps: int) =
        let cdf u = SpecialFunctions.BetaRegularized(a, b, u)
        let upper u = SpecialFunctions.BetaRegularized(b, a, 1.0 - u)
        Array.init timesteps (fun t -> binMass cdf upper (float t / float timesteps) (float (t + 1) / float timesteps))

    /// T * numpy.gradient(sqrt(1 - abar)): the process increment per unit of t/T that SpeeD thresholds
    /// (central differences inside, one-sided at the ends; zero when T = 1).
    let processIncrement (schedule: NoiseSchedule) : float[] =
        let s = schedule.AlphasCumprod |> Array.map (fun a -> Math.Sqrt(1.0 - a))
        let n = s.Length
        if n = 1 then [| 0.0 |]
        else
            Array.init n (fun t ->
                let d = if t = 0 then s.[1] - s.[0] elif t = n - 1 then s.[n - 1] - s.[n - 2] else (s.[t + 1] - s.[t - 1]) / 2.0
                float n * d)

    let private speedMasses (k: float) (threshold: float) (schedule: NoiseSchedule) =
        processIncrement schedule |> Array.map (fun g -> if g > threshold then k else 1.0)

    let private normalise (masses: float[]) =
        let total = Array.sum masses
        if not (total > 0.0) then invalidArg "density" "the density puts no mass on any timestep"
        masses |> Array.map (fun m -> m / total)

    /// The density as a probability vector over the schedule's T timesteps (sums to 1). Throws ArgumentException
    /// for invalid parameters.
    let pmf (density: TimestepDensity) (schedule: NoiseSchedule) : float[] =
        match validate density with
        | Error message -> invalidArg "density" message
        | Ok _ -> ()
        let timesteps = schedule.Timesteps
        match density with
        | Uniform -> Array.create timesteps (1.0 / float timesteps)
        | LogitNormal(m, s) -> normalise (logitNormalMasses m s timesteps)
        | Beta(a, b) -> normalise (betaMasses a b timesteps)
        | Speed(k, threshold) -> normalise (speedMasses k threshold schedule)

    /// p restricted to the half-open cluster [start, stop) and renormalised: entry i is P(t = start + i | t in cluster).
    /// Throws ArgumentException when the range is empty, out of bounds, or carries no mass.
    let restrict (probabilities: float[]) (start: int) (stop: int) : float[] =
        if start < 0 || stop > probabilities.Length || start >= stop then
            invalidArg "start" (sprintf "cluster [%d, %d) is not a non-empty range of [0, %d)" start stop probabilities.Length)
        let slice = probabilities.[start .. stop - 1]
        let total = Array.sum slice
        if not (total > 0.0) then invalidArg "start" (sprintf "the density puts no mass on cluster [%d, %d)" start stop)
        slice |> Array.map (fun p -> p / total)

    /// w_i = (1/n) / p_i: draws from p weighted by w have the uniform expectation, sum_i p_i w_i f_i = mean_i f_i,
    /// and E_p[w] = 1. Throws ArgumentException when some p_i = 0 (that index is never drawn, so no weight recovers it).
    let importanceWeights (probabilities: float[]) : float[] =
        let n = float probabilities.Length
        probabilities
        |> Array.mapi (fun i p ->
            if not (p > 0.0) then
                invalidArg "probabilities" (sprintf "the density puts no mass on index %d, so importance weights cannot make it unbiased" i)
            1.0 / (n * p))

/// Inverse-CDF sampling from a probability vector: index i for a uniform draw u in [0, 1) is the smallest i with
/// p_0 + ... + p_i > u, so an index with p_i = 0 is never returned.
[<Sealed>]
type InverseCdfSampler(probabilities: float[]) =
    do
        if isNull probabilities || probabilities.Length = 0 then invalidArg "probabilities" "a distribution needs at least one entry"
        probabilities |> Array.iteri (fun i p ->
            if Double.IsNaN p || Double.IsInfinity p || p < 0.0 then
                invalidArg "probabilities" (sprintf "probability %d is %g; each must be finite and non-negative" i p))
        let total = Array.sum probabilities
        if abs (total - 1.0) > 1e-9 then invalidArg "probabilities" (sprintf "probabilities sum to %.17g, not 1" total)

    let cumulative = Array.scan (+) 0.0 probabilities |> Array.tail
    // Rounding can leave the last partial sum just below 1; draws above it go to the last index with mass.
    let lastWithMass = Array.FindLastIndex(probabilities, fun p -> p > 0.0)

    /// Number of outcomes.
    member _.Count = probabilities.Length

    /// A copy of the probabilities.
    member _.Probabilities = Array.copy probabilities

    /// The outcome of uniform draw u in [0, 1). Throws ArgumentException outside that range.
    member _.Sample(u: float) : int =
        if not (u >= 0.0 && u < 1.0) then invalidArg "u" (sprintf "a uniform draw must lie in [0, 1), got %g" u)
        // Binary search for the first partial sum above u.
        let mutable lo = 0
        let mutable hi = cumulative.Length - 1
        if cumulative.[hi] <= u then lastWithMass
        else
            while lo < hi do
                let mid = (lo + hi) / 2
                if cumulative.[mid] > u then hi <- mid else lo <- mid + 1
            lo
