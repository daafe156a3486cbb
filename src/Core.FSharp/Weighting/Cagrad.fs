namespace DiffusionFunctional.Core.Weighting

open System

/// How CAGrad's combined update is rescaled afterwards (LibMTL / the official code's `rescale` flag).
type CagradRescale =
    /// d = g0 + lambda g_w, as in the paper.
    | None = 0
    /// d / (1 + c^2): the official code's and LibMTL's default (rescale = 1).
    | OnePlusCSquared = 1
    /// d / (1 + c) (rescale = 2).
    | OnePlusC = 2

/// CAGrad's solution expressed over the task gradients.
type CagradResult =
    { /// Combined weights: update with sum_j Weights[j] g_j (= the rescaled d).
      Weights: float[]
      /// The dual solution w on the simplex (g_w = sum_j w_j g_j).
      SimplexWeights: float[]
      /// lambda = c |g0| / |g_w|, so d = g0 + lambda g_w before rescaling.
      Lambda: float
      /// True when g0 = 0, or the dual optimum has |g_w| <= 1e-4 max_i |g_i| (0 lies in, or very near, the
      /// hull of the gradients): the direction g_w / |g_w| is then undetermined or lost to rounding, and the
      /// update falls back to g0 (Weights = 1/k each, rescaled; SimplexWeights still holds the dual solution).
      Degenerate: bool }

/// CAGrad (Liu et al. 2021), c in [0, 1): the update d maximises min_i g_i . d over the ball
/// |d - g0| <= c |g0| around the average gradient g0 = (1/k) sum_i g_i. Its dual is
/// min over the simplex of F(w) = g_w . g0 + c |g0| |g_w|, and d = g0 + (c |g0| / |g_w|) g_w.
module Cagrad =

    /// The dual objective F(w) = w' G b + c |g0| sqrt(w' G w) with b = (1/k, ..., 1/k), |g0|^2 = b' G b.
    /// Example: `Cagrad.dualObjective (array2D [ [ 1.0; 0.0 ]; [ 0.0; 1.0 ] ]) 0.5 [| 0.5; 0.5 |]` = 0.5 + 0.5 * 0.5.
    let dualObjective (gram: float[,]) (c: float) (w: float[]) : float =
        let k = Array2D.length1 gram
        let b = Array.create k (1.0 / float k)
        let gw = DenseLinearAlgebra.multiply gram w
        let linear = Array.fold2 (fun acc x y -> acc + x * y) 0.0 gw b
        linear + c * sqrt (max 0.0 (DenseLinearAlgebra.quadraticForm gram b)) * sqrt (max 0.0 (DenseLinearAlgebra.quadraticForm gram w))

    let private rescaled (rescale: CagradRescale) (c: float) (weights: float[]) =
        match rescale with
        | CagradRescale.None -> weights
        | CagradRescale.OnePlusCSquared -> Array.map (fun x -> x / (1.0 + c * c)) weights
        | CagradRescale.OnePlusC -> Array.map (fun x -> x / (1.0 + c)) weights
        | other -> invalidArg "rescale" (sprintf "unknown CAGrad rescale mode %d" (int other))

    /// Solves CAGrad exactly from the Gram matrix. Why this works: writing c|g0||g_w| = min over t > 0 of
    /// c|g0| (|g_w|^2 / t + t) / 2 turns the dual into a one-dimensional convex problem in t whose inner
    /// problem, for beta = t / (c |g0|), is the min-norm point of the shifted gradients g_i + beta g0
    /// (solved exactly by Wolfe's algorithm). The optimal t satisfies |g_w(t)| = t, and |g_w(t)| / t
    /// decreases in t, so bisection on log t finds it to rounding.
    /// Example: for G = I (2 orthogonal unit gradients) and c = 0.5, `(Cagrad.solve g 0.5 CagradRescale.None).Weights`
    /// is [| 0.75; 0.75 |] (to rounding): d = g0 + 0.5 |g0| g0 / |g0| = 1.5 g0.
    let solve (gram: float[,]) (c: float) (rescale: CagradRescale) : CagradResult =
        if Double.IsNaN c || c < 0.0 || c >= 1.0 then
            invalidArg "c" (sprintf "CAGrad's c must lie in [0, 1) (the paper uses 0.5), got %g" c)
        let g = GramMatrix.validatePositiveSemidefinite gram
        let k = Array2D.length1 g
        let b = Array.create k (1.0 / float k)
        let gb = DenseLinearAlgebra.multiply g b
        let g0Squared = max 0.0 (Array.fold2 (fun acc x y -> acc + x * y) 0.0 gb b)
        let radius = c * sqrt g0Squared
        let maxDiagonal = Seq.max (seq { for i in 0 .. k - 1 -> g.[i, i] })
        let fallback degenerate simplexWeights =
            { Weights = rescaled rescale c b; SimplexWeights = simplexWeights; Lambda = 0.0; Degenerate = degenerate }
        let g0Vanishes = g0Squared <= 1e-16 * maxDiagonal
        if c = 0.0 || g0Vanishes || maxDiagonal <= 0.0 then fallback (g0Vanishes || maxDiagonal <= 0.0) (Array.copy b)
        else
            let innerWeights beta =
                let shifted = Array2D.init k k (fun i j -> g.[i, j] + beta * (gb.[i] + gb.[j]) + beta * beta * g0Squared)
                fst (SimplexQp.wolfe shifted)
            // psi(beta) = |g_w|^2 - t^2 with t = beta * radius: positive below the optimum, negative above.
            let psi beta =
                let w = innerWeights beta
                DenseLinearAlgebra.quadraticForm g w - beta * beta * radius * radius, w
            let mutable hi = 1.0001 * sqrt maxDiagonal / radius
            let mutable lo = hi
            let mutable found = false
            let floor = hi * 1e-16
            while not found && lo > floor do
                let next = lo * 1e-2
                found <- fst (psi next) > 0.0
                if not found then hi <- next
                lo <- next
            let mutable iterations = 0
            while found && hi / lo - 1.0 > 1e-15 && iterations < 200 do
                let mid = sqrt (lo * hi)
                if fst (psi mid) > 0.0 then lo <- mid else hi <- mid
                iterations <- iterations + 1
            let w = snd (psi (sqrt (lo * hi)))
            let squaredNorm = DenseLinearAlgebra.quadraticForm g w
            // |g_w| below 1e-4 max |g_i| means lambda w_j would be huge and sum_j lambda w_j g_j would cancel
            // catastrophically in float32: the direction g_w / |g_w| is numerically meaningless, so use g0.
            if squaredNorm <= 1e-8 * maxDiagonal then fallback true w
            else
                let lambda = radius / sqrt squaredNorm
                { Weights = rescaled rescale c (Array.init k (fun j -> b.[j] + lambda * w.[j]))
                  SimplexWeights = w
                  Lambda = lambda
                  Degenerate = false }
