namespace DiffusionFunctional.Core

open System

/// The noise schedules users know from diffusers, plus user-given betas.
type ScheduleKind =
    | Linear
    | ScaledLinear
    | SquaredCosCapV2
    | Sigmoid
    /// Betas supplied by the user, one per timestep, each in (0, 1).
    | CustomBetas of float[]

/// A discrete forward process over timesteps 0..T-1 (t = 0 least noisy).
/// SNR(t) = abar_t / (1 - abar_t); LogSnr is computed without cancellation near t = 0.
type NoiseSchedule =
    { Kind: ScheduleKind
      Timesteps: int
      Betas: float[]
      Alphas: float[]
      AlphasCumprod: float[]
      Snr: float[]
      LogSnr: float[] }

/// Noise schedules exactly as the schedules as diffusers names and defines them (docs/clustering.md) (diffusers names and defaults).
module Schedule =

    /// The diffusers name of a schedule kind ("custom" for user-given betas).
    let name kind =
        match kind with
        | Linear -> "linear"
        | ScaledLinear -> "scaled_linear"
        | SquaredCosCapV2 -> "squaredcos_cap_v2"
        | Sigmoid -> "sigmoid"
        | CustomBetas _ -> "custom"

    /// Names accepted by `tryParseKind`, in the order users see them.
    let knownNames = [ "linear"; "scaled_linear"; "squaredcos_cap_v2"; "sigmoid" ]

    /// Parses a diffusers schedule name (case-insensitive; '-' accepted for '_').
    /// Example: `Schedule.tryParseKind "linear" = Ok Linear`.
    let tryParseKind (text: string) : Result<ScheduleKind, string> =
        match (if isNull text then "" else text.Trim().ToLowerInvariant().Replace('-', '_')) with
        | "linear" -> Ok Linear
        | "scaled_linear" -> Ok ScaledLinear
        | "squaredcos_cap_v2" | "cosine" -> Ok SquaredCosCapV2
        | "sigmoid" -> Ok Sigmoid
        | _ ->
            Error(sprintf "unknown schedule '%s' (expected one of: %s)" text (String.Join(", ", knownNames)))

    /// numpy.linspace(start, stop, n): n evenly spaced values, both ends included; [start] when n = 1.
    let linspace (start: float) (stop: float) (n: int) : float[] =
        if n = 1 then [| start |]
        else Array.init n (fun i -> if i = n - 1 then stop else start + (stop - start) * float i / float (n - 1))

    // netstandard2.0 has no Math.Log1P / expm1: Goldberg's and Kahan's compensated forms.
    let internal log1p (x: float) =
        let u = 1.0 + x
        if u = 1.0 then x else Math.Log u * x / (u - 1.0)

    let internal expm1 (x: float) =
        if abs x < 1e-5 then x + 0.5 * x * x + x * x * x / 6.0
        else
            let u = Math.Exp x
            if u = 1.0 then x
            elif u - 1.0 = -1.0 then -1.0
            else (u - 1.0) * x / Math.Log u

    let private sigmoid (x: float) = 1.0 / (1.0 + Math.Exp(-x))

    let private cosineAlphaBar (u: float) =
        let c = Math.Cos((u + 0.008) / 1.008 * Math.PI / 2.0)
        c * c

    /// The betas of a schedule kind for T timesteps. Throws ArgumentException when T < 1
    /// or custom betas are not T values in (0, 1).
    let betas (kind: ScheduleKind) (timesteps: int) : float[] =
        if timesteps < 1 then invalidArg "timesteps" (sprintf "timesteps must be at least 1, got %d" timesteps)
        match kind with
        | Linear -> linspace 1e-4 0.02 timesteps
        | ScaledLinear -> linspace (sqrt 0.00085) (sqrt 0.012) timesteps |> Array.map (fun b -> b * b)
        | SquaredCosCapV2 ->
            Array.init timesteps (fun i ->
                let t1 = float i / float timesteps
                let t2 = float (i + 1) / float timesteps
                min (1.0 - cosineAlphaBar t2 / cosineAlphaBar t1) 0.999)
        | Sigmoid -> linspace -6.0 6.0 timesteps |> Array.map (fun x -> sigmoid x * (0.02 - 1e-4) + 1e-4)
        | CustomBetas given ->
            if given.Length <> timesteps then
                invalidArg "kind" (sprintf "%d custom betas given for %d timesteps" given.Length timesteps)
            given
            |> Array.iteri (fun i b ->
                if Double.IsNaN b || b <= 0.0 || b >= 1.0 then
                    invalidArg "kind" (sprintf "custom beta %d is %g; every beta must lie in (0, 1)" i b))
            Array.copy given

    /// Builds the schedule: betas, alphas, alphas_cumprod, SNR and log-SNR.
    /// Example: for `create Linear 1000`, LogSnr.[0] = ln 9999 = 9.2102...
    let create (kind: ScheduleKind) (timesteps: int) : NoiseSchedule =
        let b = betas kind timesteps
        let alphas = b |> Array.map (fun beta -> 1.0 - beta)
        // log abar_t as a sum of log1p(-beta) keeps 1 - abar_t accurate where abar_t is close to 1.
        let logAbar = b |> Array.scan (fun acc beta -> acc + log1p -beta) 0.0 |> Array.tail
        let abar = logAbar |> Array.map Math.Exp
        let oneMinusAbar = logAbar |> Array.map (fun la -> -(expm1 la))
        let logSnr = Array.map2 (fun la om -> la - Math.Log om) logAbar oneMinusAbar
        { Kind = kind
          Timesteps = timesteps
          Betas = b
          Alphas = alphas
          AlphasCumprod = abar
          Snr = Array.map2 (fun a om -> a / om) abar oneMinusAbar
          LogSnr = logSnr }

    /// Like `create` but reports a bad name or T as an error message instead of throwing.
    let tryCreate (scheduleName: string) (timesteps: int) : Result<NoiseSchedule, string> =
        if timesteps < 1 then Error(sprintf "timesteps must be at least 1, got %d" timesteps)
        else tryParseKind scheduleName |> Result.map (fun kind -> create kind timesteps)

    /// Like `create` for user-given betas, reporting bad values as an error message.
    let tryCreateCustom (givenBetas: float[]) : Result<NoiseSchedule, string> =
        if isNull givenBetas || givenBetas.Length = 0 then Error "custom betas: at least one value is needed"
        else
            match givenBetas |> Array.tryFindIndex (fun b -> Double.IsNaN b || b <= 0.0 || b >= 1.0) with
            | Some i -> Error(sprintf "custom beta %d is %g; every beta must lie in (0, 1)" i givenBetas.[i])
            | None -> Ok(create (CustomBetas givenBetas) givenBetas.Length)
