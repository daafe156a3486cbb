namespace DiffusionFunctional.Core.Weighting

open System

/// The minimum-norm point of the convex hull of the gradients: weights w on the simplex
/// (w >= 0, sum w = 1) minimising |sum_j w_j g_j|^2 = w' G w.
type MinNormPoint =
    { /// Weights on the simplex; the update is sum_j Weights[j] g_j.
      Weights: float[]
      /// w' G w, the squared norm of the min-norm point.
      SquaredNorm: float
      /// Major cycles of Wolfe's algorithm.
      Iterations: int }

/// Exact minimum-norm-point solver over the simplex from a Gram matrix alone.
module SimplexQp =

    // Wolfe's (1976) minimum-norm-point algorithm, written on inner products only. It is finite and exact
    // (each step solves a small linear system on an affinely independent "corral"), unlike Frank-Wolfe.
    let internal wolfe (p: float[,]) : float[] * int =
        let k = Array2D.length1 p
        let scale = Seq.max (seq { for i in 0 .. k - 1 -> p.[i, i] })
        if scale <= 0.0 then Array.create k (1.0 / float k), 0
        else
            let tol = 1e-12 * scale
            let lambda = Array.zeroCreate k
            let first = Array.init k id |> Array.minBy (fun i -> p.[i, i])
            lambda.[first] <- 1.0
            let support = ResizeArray [ first ]
            let affineMinimiser () =
                let s = support.ToArray()
                let m = s.Length
                // [P_SS, c 1; c 1', 0] [mu; nu] = [0; c], with c = scale to keep the system balanced.
                let a = Array2D.init (m + 1) (m + 1) (fun r c ->
                    if r < m && c < m then p.[s.[r], s.[c]] elif r = m && c = m then 0.0 else scale)
                let rhs = Array.init (m + 1) (fun r -> if r = m then scale else 0.0)
                let solution =
                    match DenseLinearAlgebra.trySolve 1e-14 a rhs with
                    | Some x -> x
                    | None -> DenseLinearAlgebra.minNormLeastSquares 1e-12 a rhs
                s, solution.[0 .. m - 1]
            let mutable iterations = 0
            let mutable finished = false
            let mutable previous = Double.PositiveInfinity
            while not finished && iterations < 50 * k + 50 do
                iterations <- iterations + 1
                let v = DenseLinearAlgebra.multiply p lambda
                let xx = Array.fold2 (fun acc a b -> acc + a * b) 0.0 lambda v
                let j = Array.init k id |> Array.minBy (fun i -> v.[i])
                // Stop at optimality, or when rounding stops the norm from decreasing.
                if v.[j] >= xx - tol || support.Contains j || xx >= previous then finished <- true
                else
                    previous <- xx
                    support.Add j
                    let mutable minor = true
                    while minor do
                        let s, mu = affineMinimiser ()
                        if mu |> Array.forall (fun x -> x > 0.0) then
                            Array.iteri (fun r i -> lambda.[i] <- mu.[r]) s
                            minor <- false
                        else
                            let mutable theta = 1.0
                            let mutable leaving = -1
                            for r in 0 .. s.Length - 1 do
                                if mu.[r] <= 0.0 then
                                    let i = s.[r]
                                    let gap = lambda.[i] - mu.[r]
                                    let t = if gap > 0.0 then lambda.[i] / gap else 0.0
                                    if t < theta || leaving < 0 then
                                        theta <- t
                                        leaving <- i
                            for r in 0 .. s.Length - 1 do
                                let i = s.[r]
                                lambda.[i] <- theta * mu.[r] + (1.0 - theta) * lambda.[i]
                            lambda.[leaving] <- 0.0
                            for r in 0 .. s.Length - 1 do
                                let i = s.[r]
                                if lambda.[i] <= 0.0 then
                                    lambda.[i] <- 0.0
                                    support.Remove i |> ignore
            let total = Array.sum lambda
            Array.map (fun x -> max 0.0 x / total) lambda, iterations

    /// The exact minimum-norm point of the convex hull of k gradients given their Gram matrix
    /// (Wolfe's algorithm). The weights are unique when the gradients are affinely independent; otherwise
    /// the point is, and one optimal weight vector is returned. Throws ArgumentException on a bad matrix.
    /// Example: `(SimplexQp.minNormPoint (array2D [ [ 1.0; 0.0 ]; [ 0.0; 1.0 ] ])).Weights = [| 0.5; 0.5 |]`.
    let minNormPoint (gram: float[,]) : MinNormPoint =
        let g = GramMatrix.validatePositiveSemidefinite gram
        let w, iterations = wolfe g
        { Weights = w; SquaredNorm = DenseLinearAlgebra.quadraticForm g w; Iterations = iterations }

/// MGDA (Sener & Koltun 2018): the common descent direction is the minimum-norm point of the convex hull
/// of the task gradients, with no gradient normalisation (LibMTL's default `mgda_gn = none`).
module Mgda =

    /// MGDA weights on the simplex: update with sum_j w_j g_j. Exact (see `SimplexQp.minNormPoint`).
    /// Example: `(Mgda.solve (array2D [ [ 4.0; 0.0 ]; [ 0.0; 1.0 ] ])).Weights = [| 0.2; 0.8 |]`.
    let solve (gram: float[,]) : MinNormPoint = SimplexQp.minNormPoint gram
