namespace DiffusionFunctional.Core.Weighting

open System

/// Settings of the Nash-MTL solver.
type NashOptions =
    { /// Stop when max_i |alpha_i (G alpha)_i - 1| falls below this (1e-10 by default).
      Tolerance: float
      /// Newton iterations before giving up (100 by default; typical solves take 5 to 15).
      MaxIterations: int
      /// Ridge added to the diagonal of the normalised G when no exact solution exists (1e-6 by default).
      Ridge: float }

/// Nash-MTL's bargaining solution for one Gram matrix.
type NashResult =
    { /// alpha > 0 with alpha_i ((G / |G|_F + ridge I) alpha)_i = 1: the reference's weights.
      Alpha: float[]
      /// alpha / k: the weights on the raw per-cluster gradients (and losses), so the trainer
      /// backpropagates sum_i alpha_i L_i / k (method.md section 6), i.e. updates with sum_j Weights[j] g_j.
      Weights: float[]
      /// |G|_F, the Frobenius norm G was divided by.
      NormalisationFactor: float
      /// Ridge actually added to the normalised G: 0 unless the hull of the gradients (almost) contains 0.
      RidgeUsed: float
      /// Newton iterations taken.
      Iterations: int
      /// max_i |alpha_i (G alpha)_i - 1| at the returned alpha (for the ridged matrix when RidgeUsed > 0).
      Residual: float
      /// Residual <= Tolerance.
      Converged: bool }

/// Nash-MTL (Navon et al. 2022) solved exactly. alpha_i (G alpha)_i = 1 with alpha > 0 is the stationarity
/// condition G alpha = 1 / alpha of f(alpha) = alpha' G alpha / 2 - sum_i log alpha_i, whose Hessian
/// G + diag(1 / alpha^2) is positive definite for every alpha > 0 even when G is only semi-definite; so
/// damped Newton with a positivity-keeping line search converges globally, then quadratically.
/// f has a minimiser iff min over the simplex of w' G w > 0 (then f >= m (1'alpha)^2 / 2 - sum log alpha
/// is coercive); when the hull of the gradients contains 0 (a zero gradient, two opposite gradients)
/// no positive solution exists, and the solver adds a small ridge and says so in `RidgeUsed`.
module NashMtl =

    /// Tolerance 1e-10, 100 iterations, ridge 1e-6.
    let defaultOptions = { Tolerance = 1e-10; MaxIterations = 100; Ridge = 1e-6 }

    let private residual (g: float[,]) (alpha: float[]) =
        let ga = DenseLinearAlgebra.multiply g alpha
        Array.fold2 (fun acc a x -> max acc (abs (a * x - 1.0))) 0.0 alpha ga

    let private objective (g: float[,]) (alpha: float[]) =
        if alpha |> Array.exists (fun a -> not (a > 0.0)) then Double.PositiveInfinity
        else 0.5 * DenseLinearAlgebra.quadraticForm g alpha - Array.sumBy log alpha

    // Damped Newton on f from a scaled start; returns alpha, iterations, residual.
    let private newton (options: NashOptions) (g: float[,]) =
        let k = Array2D.length1 g
        let start = Array.init k (fun i -> if g.[i, i] > 0.0 then 1.0 / sqrt g.[i, i] else 1.0)
        // The best multiple t of the start: t^2 (a' G a) = k minimises f along the ray.
        let scale = sqrt (float k / max 1e-300 (DenseLinearAlgebra.quadraticForm g start))
        let mutable alpha = Array.map (fun a -> a * scale) start
        let mutable iterations = 0
        let mutable r = residual g alpha
        let mutable stalled = false
        while r > options.Tolerance && iterations < options.MaxIterations && not stalled do
            iterations <- iterations + 1
            let ga = DenseLinearAlgebra.multiply g alpha
            let gradient = Array.init k (fun i -> ga.[i] - 1.0 / alpha.[i])
            let hessian = Array2D.init k k (fun i j -> if i = j then g.[i, j] + 1.0 / (alpha.[i] * alpha.[i]) else g.[i, j])
            match DenseLinearAlgebra.tryCholesky hessian with
            | None -> stalled <- true
            | Some l ->
                let step = DenseLinearAlgebra.choleskySolve l gradient |> Array.map (fun x -> -x)
                // Largest step keeping alpha > 0 (stop 1% short of the boundary).
                let mutable t = 1.0
                for i in 0 .. k - 1 do
                    if step.[i] < 0.0 then t <- min t (-0.99 * alpha.[i] / step.[i])
                let slope = Array.fold2 (fun acc a b -> acc + a * b) 0.0 gradient step
                let f0 = objective g alpha
                let trial t = Array.init k (fun i -> alpha.[i] + t * step.[i])
                // Armijo backtracking; once the predicted decrease is below rounding, Newton is in its
                // quadratic phase and the full step is taken.
                if -slope > 1e-12 * (1.0 + abs f0) then
                    while t > 1e-12 && objective g (trial t) > f0 + 1e-4 * t * slope do
                        t <- 0.5 * t
                let next = trial t
                let rNext = residual g next
                if t <= 1e-12 || (rNext >= r && -slope <= 1e-12 * (1.0 + abs f0)) then stalled <- true
                else
                    alpha <- next
                    r <- rNext
        alpha, iterations, r

    /// Nash-MTL weights with explicit options. G is divided by its Frobenius norm first (as the reference
    /// does). Throws ArgumentException for a bad matrix or bad options.
    /// Example: for G = diag(4, 1), `(NashMtl.solveWith NashMtl.defaultOptions g).Alpha` solves
    /// alpha_i^2 G_ii / |G|_F = 1, i.e. alpha = [| sqrt(sqrt 17 / 4); sqrt(sqrt 17) |].
    let solveWith (options: NashOptions) (gram: float[,]) : NashResult =
        if not (options.Tolerance > 0.0) then invalidArg "options" (sprintf "Tolerance must be positive, got %g" options.Tolerance)
        if options.MaxIterations < 1 then invalidArg "options" (sprintf "MaxIterations must be at least 1, got %d" options.MaxIterations)
        if not (options.Ridge > 0.0) || Double.IsInfinity options.Ridge then
            invalidArg "options" (sprintf "Ridge must be positive and finite, got %g" options.Ridge)
        let g = GramMatrix.validatePositiveSemidefinite gram
        let k = Array2D.length1 g
        let norm = GramMatrix.frobeniusNorm g
        let normalised = if norm > 0.0 then Array2D.map (fun x -> x / norm) g else g
        // A positive solution exists iff the min-norm point of the hull is not 0 (see the module doc).
        let hullDistance = DenseLinearAlgebra.quadraticForm normalised (fst (SimplexQp.wolfe normalised))
        let ridge = if hullDistance > 1e-9 then 0.0 else options.Ridge
        let system = Array2D.init k k (fun i j -> if i = j then normalised.[i, j] + ridge else normalised.[i, j])
        let alpha, iterations, r = newton options system
        { Alpha = alpha
          Weights = Array.map (fun a -> a / float k) alpha
          NormalisationFactor = norm
          RidgeUsed = ridge
          Iterations = iterations
          Residual = r
          Converged = r <= options.Tolerance }

    /// Nash-MTL weights with `defaultOptions`. The trainer backpropagates sum_i Alpha[i] L_i / k (equivalently
    /// updates with sum_j Weights[j] g_j), clips the gradient norm to 1.0 and recomputes every 25 steps.
    /// Example: `(NashMtl.solve (array2D [ [ 1.0; 0.0 ]; [ 0.0; 1.0 ] ])).Alpha` = [| 2^(1/4); 2^(1/4) |] (|I|_F = sqrt 2).
    let solve (gram: float[,]) : NashResult = solveWith defaultOptions gram
