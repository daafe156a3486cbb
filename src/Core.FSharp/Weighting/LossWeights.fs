namespace DiffusionFunctional.Core.Weighting

open System

module internal Checks =
    let finite (name: string) (v: float) =
        if Double.IsNaN v || Double.IsInfinity v then invalidArg name (sprintf "%s must be finite, got %g" name v)

    let positive (name: string) (v: float) =
        finite name v
        if not (v > 0.0) then invalidArg name (sprintf "%s must be positive, got %g" name v)

    let nonEmpty (name: string) (values: float[]) =
        if isNull values then nullArg name
        if values.Length = 0 then invalidArg name (sprintf "%s must have at least one entry (one per task)" name)
        values |> Array.iteri (fun i v -> finite (sprintf "%s[%d]" name i) v)

    let sameLength (name: string) (k: int) (values: float[]) =
        nonEmpty name values
        if values.Length <> k then invalidArg name (sprintf "%s must have one entry per task (%d), got %d" name k values.Length)

/// Min-SNR-gamma loss weights (Hang et al. 2023), docs/weightings.md; gamma = 5 by convention.
module MinSnr =

    /// w_t = min(SNR_t, gamma) / SNR_t for epsilon-prediction (SNR_t > 0).
    /// Example: `MinSnr.epsilonWeight 10.0 5.0 = 0.5`, `MinSnr.epsilonWeight 2.0 5.0 = 1.0`.
    let epsilonWeight (snr: float) (gamma: float) : float =
        Checks.positive "snr" snr
        Checks.positive "gamma" gamma
        min snr gamma / snr

    /// w_t = min(SNR_t, gamma) / (SNR_t + 1) for v-prediction (SNR_t >= 0).
    /// Example: `MinSnr.vWeight 4.0 5.0 = 0.8`.
    let vWeight (snr: float) (gamma: float) : float =
        Checks.finite "snr" snr
        if snr < 0.0 then invalidArg "snr" (sprintf "snr must be non-negative, got %g" snr)
        Checks.positive "gamma" gamma
        min snr gamma / (snr + 1.0)

/// P2 weighting (Choi et al. 2022), docs/weightings.md: w_t = 1 / (k + SNR_t)^gamma, k = 1, gamma in {0.5, 1}.
module P2 =

    /// 1 / (k + snr)^gamma (k > 0, snr >= 0, gamma >= 0). Example: `P2.weight 3.0 1.0 0.5 = 0.5`.
    let weight (snr: float) (k: float) (gamma: float) : float =
        Checks.finite "snr" snr
        if snr < 0.0 then invalidArg "snr" (sprintf "snr must be non-negative, got %g" snr)
        Checks.positive "k" k
        Checks.finite "gamma" gamma
        if gamma < 0.0 then invalidArg "gamma" (sprintf "gamma must be non-negative, got %g" gamma)
        Math.Pow(k + snr, -gamma)

/// Uncertainty weighting (Kendall et al. 2018) as ANT section 4.2; docs/weightings.md writes it for k clusters:
/// loss = sum_i 0.5 (exp(-s_i) L_i / k + s_i), s in R^k learned (init 0, AdamW lr 0.025, no weight decay).
module Uncertainty =

    /// The UW loss value for log-variances s and cluster losses L.
    /// Example: `Uncertainty.loss [| 0.0; 0.0 |] [| 2.0; 4.0 |] = 0.5 * (1.0 + 2.0)`.
    let loss (logVariances: float[]) (losses: float[]) : float =
        Checks.nonEmpty "losses" losses
        Checks.sameLength "logVariances" losses.Length logVariances
        let k = float losses.Length
        Array.fold2 (fun acc s l -> acc + 0.5 * (exp (-s) * l / k + s)) 0.0 logVariances losses

    /// d loss / d s_i = 0.5 (1 - exp(-s_i) L_i / k).
    /// Example: `Uncertainty.gradient [| 0.0 |] [| 3.0 |] = [| -1.0 |]`.
    let gradient (logVariances: float[]) (losses: float[]) : float[] =
        Checks.nonEmpty "losses" losses
        Checks.sameLength "logVariances" losses.Length logVariances
        let k = float losses.Length
        Array.map2 (fun s l -> 0.5 * (1.0 - exp (-s) * l / k)) logVariances losses

    /// The weights the UW loss puts on each L_i: d loss / d L_i = 0.5 exp(-s_i) / k.
    /// Example: `Uncertainty.lossWeights [| 0.0; 0.0 |] = [| 0.25; 0.25 |]`.
    let lossWeights (logVariances: float[]) : float[] =
        Checks.nonEmpty "logVariances" logVariances
        let k = float logVariances.Length
        logVariances |> Array.map (fun s -> 0.5 * exp (-s) / k)

    /// For fixed losses L_i > 0 the loss is minimised at s_i = log(L_i / k) (where exp(-s_i) L_i / k = 1).
    /// Example: `Uncertainty.optimalLogVariances [| 2.0; 2.0 |] = [| 0.0; 0.0 |]`.
    let optimalLogVariances (losses: float[]) : float[] =
        Checks.nonEmpty "losses" losses
        losses |> Array.iteri (fun i l -> Checks.positive (sprintf "losses[%d]" i) l)
        let k = float losses.Length
        losses |> Array.map (fun l -> log (l / k))

/// FAMO (Liu et al. 2023): one backward on sum_i z_i log(L_i - m_i + eps) / c with z = softmax(logits),
/// c = sum_i z_i / (L_i - m_i + eps) held constant, then after the next forward the logits take an
/// optimiser step along the gradient from `logitGradient` (reference: Adam, lr 0.025, L2 weight decay
/// gamma, LibMTL default 1e-3). m_i are the minimum losses (0 by default), eps = 1e-8 as the reference.
module Famo =

    /// The reference's epsilon added to L_i - m_i.
    let epsilon = 1e-8

    let private softmax (logits: float[]) =
        let top = Array.max logits
        let e = logits |> Array.map (fun x -> exp (x - top))
        let s = Array.sum e
        e |> Array.map (fun x -> x / s)

    let private gaps (losses: float[]) (minLosses: float[]) =
        Array.init losses.Length (fun i ->
            let d = losses.[i] - minLosses.[i] + epsilon
            if not (d > 0.0) then invalidArg "losses" (sprintf "losses[%d] = %g lies below its minimum %g" i losses.[i] minLosses.[i])
            d)

    // What the loss weights and the objective share, checked once: z = softmax(logits), the gaps d_i = L_i - m_i + eps
    // and the normaliser c = sum_i z_i / d_i.
    let private terms (logits: float[]) (losses: float[]) (minLosses: float[]) =
        Checks.nonEmpty "logits" logits
        Checks.sameLength "losses" logits.Length losses
        Checks.sameLength "minLosses" logits.Length minLosses
        let z = softmax logits
        let d = gaps losses minLosses
        z, d, Array.fold2 (fun acc zi di -> acc + zi / di) 0.0 z d

    /// The weights FAMO's loss puts on each L_i: z_i / (c (L_i - m_i + eps)); they sum to 1. Backpropagating
    /// sum_i w_i L_i with these weights held constant gives exactly the reference's gradient.
    /// Example: `Famo.lossWeights [| 0.0; 0.0 |] [| 1.0; 3.0 |] [| 0.0; 0.0 |]` = [| 0.75; 0.25 |] (to 1e-8).
    let lossWeights (logits: float[]) (losses: float[]) (minLosses: float[]) : float[] =
        let z, d, c = terms logits losses minLosses
        Array.map2 (fun zi di -> zi / (c * di)) z d

    /// The FAMO objective value sum_i z_i log(L_i - m_i + eps) / c (for logging).
    /// Example: `Famo.objective [| 0.0 |] [| 1.0 |] [| 0.0 |]` = log(1 + 1e-8) * (1 + 1e-8).
    let objective (logits: float[]) (losses: float[]) (minLosses: float[]) : float =
        let z, d, c = terms logits losses minLosses
        Array.fold2 (fun acc zi di -> acc + zi * log di / c) 0.0 z d

    /// The logits' gradient after a step: J_softmax(logits)' delta with delta_i = log(Lprev_i - m_i + eps)
    /// - log(Lcurr_i - m_i + eps), i.e. z * (delta - z . delta). Feed it to the logits' optimiser.
    /// Example: `Famo.logitGradient [| 0.0; 0.0 |] [| 1.0; 1.0 |] [| 1.0; 1.0 |] [| 0.0; 0.0 |] = [| 0.0; 0.0 |]`.
    let logitGradient (logits: float[]) (previousLosses: float[]) (currentLosses: float[]) (minLosses: float[]) : float[] =
        Checks.nonEmpty "logits" logits
        Checks.sameLength "previousLosses" logits.Length previousLosses
        Checks.sameLength "currentLosses" logits.Length currentLosses
        Checks.sameLength "minLosses" logits.Length minLosses
        let z = softmax logits
        let delta = Array.map2 (fun p c -> log p - log c) (gaps previousLosses minLosses) (gaps currentLosses minLosses)
        let mean = Array.fold2 (fun acc zi di -> acc + zi * di) 0.0 z delta
        Array.map2 (fun zi di -> zi * (di - mean)) z delta

/// GradNorm (Chen et al. 2018), alpha = 1.5: loss weights w (sum k) are moved so that the weighted gradient
/// norms w_i |grad L_i| approach mean_j(w_j |grad L_j|) r_i^alpha, with r_i = (L_i / L_i(0)) / mean_j(L_j / L_j(0)).
module GradNorm =

    /// The gradient of sum_i |w_i n_i - target_i| with respect to w (targets held constant, as the paper
    /// does): sign(w_i n_i - target_i) n_i. n_i = |grad L_i| (unweighted; sqrt G_ii of the Gram matrix of the
    /// shared layer's gradients). Step w along minus this, then call `renormalise`.
    /// Example: `GradNorm.weightGradient [| 1.0; 1.0 |] [| 2.0; 1.0 |] [| 1.0; 1.0 |] [| 1.0; 1.0 |] 1.5 = [| 2.0; -1.0 |]`.
    let weightGradient (weights: float[]) (gradientNorms: float[]) (initialLosses: float[]) (losses: float[]) (alpha: float) : float[] =
        Checks.nonEmpty "weights" weights
        let k = weights.Length
        Checks.sameLength "gradientNorms" k gradientNorms
        Checks.sameLength "initialLosses" k initialLosses
        Checks.sameLength "losses" k losses
        Checks.finite "alpha" alpha
        gradientNorms |> Array.iteri (fun i n -> if n < 0.0 then invalidArg "gradientNorms" (sprintf "gradientNorms[%d] = %g is negative" i n))
        initialLosses |> Array.iteri (fun i l -> Checks.positive (sprintf "initialLosses[%d]" i) l)
        losses |> Array.iteri (fun i l -> if l < 0.0 then invalidArg "losses" (sprintf "losses[%d] = %g is negative" i l))
        let ratios = Array.map2 (/) losses initialLosses
        let meanRatio = Array.average ratios
        let weighted = Array.map2 (*) weights gradientNorms
        let meanNorm = Array.average weighted
        Array.init k (fun i ->
            let relative = if meanRatio > 0.0 then ratios.[i] / meanRatio else 1.0
            let target = meanNorm * Math.Pow(relative, alpha)
            float (sign (weighted.[i] - target)) * gradientNorms.[i])

    /// Rescales positive weights to sum to k (GradNorm's renormalisation after each step).
    /// Example: `GradNorm.renormalise [| 1.0; 3.0 |] = [| 0.5; 1.5 |]`.
    let renormalise (weights: float[]) : float[] =
        Checks.nonEmpty "weights" weights
        let total = Array.sum weights
        if not (total > 0.0) then invalidArg "weights" (sprintf "the weights must have a positive sum, got %g" total)
        weights |> Array.map (fun w -> w * float weights.Length / total)
